using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Tasks.Sources;

namespace Cutover.Platform.Epoll;

/// <summary>
/// A socket watched by one <see cref="EpollLoop"/>, read and written with recv(2) and send(2) directly, remembering
/// whether it is readable and writable the way nginx does: a receive that got less than it asked for (or EAGAIN) has
/// emptied the socket, and the next receive waits for epoll's next edge instead of trying, and failing, first. .NET's
/// socket operations always try first: one EAGAIN recv(2) per wait, two per proxied request (the client's next request,
/// the instance's response), each a whole system call (bench/README.md, proxy). A waiting operation resumes on the loop's
/// thread, inline. One receive and one send may be in flight at a time (each side has one user: the pump, the writer).
/// Owns the descriptor (and the .NET Socket it came with, if any): <see cref="Dispose"/> stops watching, fails what
/// waits, then closes.
/// </summary>
internal sealed class EpollSocket : EpollWatched, IDisposable
{
    private const uint Watched = EpollNative.EpollIn | EpollNative.EpollOut | EpollNative.EpollRdHup | EpollNative.EpollEt;
    private const uint ReadEvents = EpollNative.EpollIn | EpollNative.EpollRdHup | EpollNative.EpollHup | EpollNative.EpollErr;
    private const uint WriteEvents = EpollNative.EpollOut | EpollNative.EpollHup | EpollNative.EpollErr;

    private readonly Lock _gate = new();
    private readonly int _fd;
    private readonly ReceiveOperation _receive;
    private readonly SendOperation _send;
    private bool _readReady = true;
    private bool _writeReady;
    /// <summary>Readiness edges seen: a "drained" finding made before the latest edge does not count.</summary>
    private uint _readEdges;
    private uint _writeEdges;
    private bool _closed;
    private long _calls;
    private int _disposed;

    private readonly Socket? _socket;

    /// <param name="handle">The descriptor, non-blocking.</param>
    /// <param name="socket">The .NET Socket it belongs to, if any: disposed in its place.</param>
    /// <param name="connecting">A connect(2) is in progress: not writable until epoll says so.</param>
    private EpollSocket(SafeHandle handle, Socket? socket, EpollLoop loop, bool connecting)
    {
        Handle = handle;
        _socket = socket;
        Loop = loop;
        _fd = (int)handle.DangerousGetHandle();
        _writeReady = !connecting;
        _receive = new ReceiveOperation(this);
        _send = new SendOperation(this);
        loop.Register(this, _fd, Watched);
    }

    /// <summary>Watches a connected socket on <paramref name="loop"/> (made non-blocking).</summary>
    public static EpollSocket Connected(Socket socket, EpollLoop loop)
    {
        socket.Blocking = false;
        return new(socket.SafeHandle, socket, loop, connecting: false);
    }

    /// <summary>Watches a descriptor accept4(2) made (non-blocking already) on <paramref name="loop"/>: no .NET Socket at all.</summary>
    public static EpollSocket Accepted(SocketDescriptor handle, EpollLoop loop) => new(handle, null, loop, connecting: false);

    /// <summary>A new TCP connection to <paramref name="endpoint"/>, made and watched by <paramref name="loop"/>.</summary>
    public static async ValueTask<EpollSocket> ConnectAsync(IPEndPoint endpoint, EpollLoop loop, CancellationToken cancellationToken)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, Blocking = false };
        EpollSocket? watched = null;
        try
        {
            var inProgress = false;
            try
            {
                socket.Connect(endpoint);
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.InProgress)
            {
                inProgress = true;
            }
            // Watched only now: a socket not yet connecting reports a hang-up to epoll.
            watched = new EpollSocket(socket.SafeHandle, socket, loop, inProgress);
            if (inProgress)
            {
                await watched.WaitWritableAsync(cancellationToken);
                var error = (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!;
                // .NET gives SO_ERROR as its SocketError where it knows the errno; a raw errno (small) is mapped here.
                if (error != 0) throw error < 4096 ? EpollNative.Error(error) : new SocketException(error);
            }
            return watched;
        }
        catch
        {
            if (watched is not null) watched.Dispose();
            else socket.Dispose();
            throw;
        }
    }

    /// <summary>The descriptor (OpenSSL reads it itself; its reference count keeps a close from overtaking a call).</summary>
    public SafeHandle Handle { get; }
    public EpollLoop Loop { get; }

    /// <summary>The local address (getsockname(2), asked when needed), or null once closed.</summary>
    public IPEndPoint? LocalEndPoint()
    {
        if (!TryUse()) return null;
        try { return EpollNative.LocalEndPoint(_fd); }
        finally { Handle.DangerousRelease(); }
    }

    /// <summary>poll(2) now: whether something (data, the end, a reset) waits to be read. One call; no wait.</summary>
    public bool PollReadable()
    {
        if (!TryUse()) return true;
        try { return EpollNative.PollReadable(_fd); }
        finally { Handle.DangerousRelease(); }
    }

    /// <summary>
    /// A reference on the descriptor for one call (false once it is closed), released after it: a Dispose on another
    /// thread closes it only then, so the number is never used after its reuse by another connection.
    /// </summary>
    private bool TryUse()
    {
        var added = false;
        try
        {
            Handle.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
        }
        return added;
    }

    /// <summary>recv(2) and send(2) calls made so far (what the readiness it remembers saves is counted by tests).</summary>
    internal long Calls => Interlocked.Read(ref _calls);

    /// <summary>Bytes received (0: the peer closed its side).</summary>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return WaitReadableAsync(cancellationToken);
        while (true)
        {
            uint edges;
            lock (_gate)
            {
                if (_closed) return ValueTask.FromException<int>(Aborted());
                if (!_readReady) return _receive.Park(buffer, waitOnly: false, cancellationToken);
                edges = _readEdges;
            }
            var n = Receive(buffer.Span, out var errno);
            if (n >= 0)
            {
                if (n > 0 && n < buffer.Length) Drained(edges);
                return ValueTask.FromResult(n);
            }
            if (errno == EpollNative.EAgain) Drained(edges);
            else if (errno != EpollNative.EIntr) return ValueTask.FromException<int>(EpollNative.Error(errno));
        }
    }

    /// <summary>Completes (with 0) once there is something to read, or the end: consumes nothing, and makes no call when it already knows.</summary>
    public ValueTask<int> WaitReadableAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_closed) return ValueTask.FromException<int>(Aborted());
            if (_readReady) return ValueTask.FromResult(0);
            return _receive.Park(Memory<byte>.Empty, waitOnly: true, cancellationToken);
        }
    }

    /// <summary>
    /// The socket was found empty by something other than <see cref="ReceiveAsync"/> (OpenSSL's own read(2) wanted
    /// more): the next wait waits for epoll. <paramref name="edges"/> is <see cref="ReadEdges"/> from before that read.
    /// </summary>
    public void ReadFoundEmpty(uint edges) => Drained(edges);

    /// <summary>The count of readiness edges, to take before a read made outside <see cref="ReceiveAsync"/> (<see cref="ReadFoundEmpty"/>).</summary>
    public uint ReadEdges
    {
        get
        {
            lock (_gate) return _readEdges;
        }
    }

    private void Drained(uint edges)
    {
        lock (_gate)
            if (_readEdges == edges) _readReady = false;
    }

    /// <summary>Sends all of <paramref name="data"/>, waiting for room as often as it takes.</summary>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        while (!data.IsEmpty)
        {
            uint edges;
            lock (_gate)
            {
                if (_closed) return ValueTask.FromException(Aborted());
                if (!_writeReady) return _send.Park(data, cancellationToken);
                edges = _writeEdges;
            }
            var n = Transmit(data.Span, out var errno);
            if (n > 0)
            {
                data = data[n..];
                if (!data.IsEmpty) Full(edges);
            }
            else if (errno == EpollNative.EAgain) Full(edges);
            else if (errno != EpollNative.EIntr) return ValueTask.FromException(EpollNative.Error(errno));
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>Completes once the socket is writable (a connect finished, or failed: then SO_ERROR says how).</summary>
    public ValueTask WaitWritableAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_closed) return ValueTask.FromException(Aborted());
            if (_writeReady) return ValueTask.CompletedTask;
            return _send.Park(ReadOnlyMemory<byte>.Empty, cancellationToken);
        }
    }

    private void Full(uint edges)
    {
        lock (_gate)
            if (_writeEdges == edges) _writeReady = false;
    }

    /// <summary>shutdown(2) (best effort): the peer sees the end; what waits here sees it too, by epoll, on the loop's thread.</summary>
    public void Shutdown(SocketShutdown how)
    {
        if (!TryUse()) return;
        try { EpollNative.Shutdown(_fd, how); }
        finally { Handle.DangerousRelease(); }
    }

    /// <summary>On the loop's thread: an edge. The waiting operation of each side that became ready goes on, inline.</summary>
    internal override void OnEvents(uint events)
    {
        var resumeReceive = false;
        var resumeSend = false;
        lock (_gate)
        {
            if (_closed) return;
            if ((events & ReadEvents) != 0)
            {
                _readEdges++;
                _readReady = true;
                resumeReceive = _receive.Unpark();
            }
            if ((events & WriteEvents) != 0)
            {
                _writeEdges++;
                _writeReady = true;
                resumeSend = _send.Unpark();
            }
        }
        if (resumeReceive) _receive.Resume();
        if (resumeSend) _send.Resume();
    }

    /// <summary>Fails what waits (the connection is being torn down) without closing; <see cref="Dispose"/> closes.</summary>
    internal void Abort()
    {
        bool receiving, sending;
        lock (_gate)
        {
            if (_closed) return;
            _closed = true;
            receiving = _receive.Unpark();
            sending = _send.Unpark();
        }
        if (receiving) _receive.Fail(Aborted());
        if (sending) _send.Fail(Aborted());
    }

    /// <summary>
    /// Stops watching, fails what waits, closes the socket; once, whoever calls it first (a connection's end and an abort
    /// from a listener's stop can meet): a second epoll_ctl DEL by number after the close could hit the descriptor's
    /// next owner.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        Abort();
        if (Slot >= 0) Loop.Unregister(this, _fd);
        if (_socket is not null) _socket.Dispose();
        else Handle.Dispose();
    }

    private static SocketException Aborted() => new((int)SocketError.OperationAborted);

    /// <summary>recv(2) under a reference on the descriptor (<see cref="TryUse"/>).</summary>
    private int Receive(Span<byte> buffer, out int errno)
    {
        if (!TryUse())
        {
            errno = EBadF;
            return -1;
        }
        Interlocked.Increment(ref _calls);
        try { return EpollNative.Recv(_fd, buffer, out errno); }
        finally { Handle.DangerousRelease(); }
    }

    /// <summary>send(2) under a reference on the descriptor (<see cref="TryUse"/>).</summary>
    private int Transmit(ReadOnlySpan<byte> data, out int errno)
    {
        if (!TryUse())
        {
            errno = EBadF;
            return -1;
        }
        Interlocked.Increment(ref _calls);
        try { return EpollNative.Send(_fd, data, out errno); }
        finally { Handle.DangerousRelease(); }
    }

    private const int EBadF = 9;

    /// <summary>
    /// What both sides' waiting operations share: one at a time per side, reused (no allocation per wait), parked and
    /// unparked under the owner's gate, completed once (by the edge that resumes it, its token, or an abort).
    /// </summary>
    private abstract class WaitingOperation<TResult>(EpollSocket owner)
    {
        protected ManualResetValueTaskSourceCore<TResult> Core;
        private bool _parked;
        private CancellationToken _token;
        private CancellationTokenRegistration _registration;

        protected EpollSocket Owner => owner;

        /// <summary>Under the owner's gate, the side not ready: waits for the next edge. False when the token is cancelled already.</summary>
        protected bool TryPark(CancellationToken cancellationToken, out short version)
        {
            if (_parked) throw new InvalidOperationException($"a {GetType().Name} is already waiting on this socket");
            version = 0;
            if (cancellationToken.IsCancellationRequested) return false;
            Core.Reset();
            _token = cancellationToken;
            _parked = true;
            version = Core.Version;
            // Registered under the gate: a token cancelled meanwhile runs the callback on its thread, which waits for the gate.
            if (cancellationToken.CanBeCanceled)
                _registration = cancellationToken.UnsafeRegister(static (state, _) => ((WaitingOperation<TResult>)state!).Cancel(), this);
            return true;
        }

        /// <summary>Under the owner's gate: true if it was waiting (the caller then resumes or fails it).</summary>
        public bool Unpark()
        {
            if (!_parked) return false;
            _parked = false;
            return true;
        }

        /// <summary>Under the owner's gate, from <c>Resume</c>: the edge found nothing after all; wait for the next one.</summary>
        protected void Repark() => _parked = true;

        /// <summary>
        /// The token's callback. Only while this token's operation waits: a callback that lost the race with completion
        /// finds the next operation parked, whose token (if it is not the same one) is not cancelled.
        /// </summary>
        private void Cancel()
        {
            CancellationToken token;
            lock (owner._gate)
            {
                token = _token;
                if (!token.IsCancellationRequested || !Unpark()) return;
            }
            Fail(new OperationCanceledException(token));
        }

        /// <summary>Drops what the operation holds of its caller's (the buffer).</summary>
        protected abstract void Clear();

        protected void Complete(TResult result)
        {
            Clear();
            TakeRegistration().Unregister();
            Core.SetResult(result);
        }

        public void Fail(Exception error)
        {
            Clear();
            TakeRegistration().Unregister();
            Core.SetException(error);
        }

        private CancellationTokenRegistration TakeRegistration()
        {
            var registration = _registration;
            _registration = default;
            _token = default;
            return registration;
        }

        public ValueTaskSourceStatus GetStatus(short token) => Core.GetStatus(token);
        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            Core.OnCompleted(continuation, state, token, flags);
    }

    /// <summary>The one receive (or wait for readability) that may wait at a time.</summary>
    private sealed class ReceiveOperation(EpollSocket owner) : WaitingOperation<int>(owner), IValueTaskSource<int>
    {
        private Memory<byte> _buffer;
        private bool _waitOnly;

        /// <summary>Under the owner's gate, the socket not readable.</summary>
        public ValueTask<int> Park(Memory<byte> buffer, bool waitOnly, CancellationToken cancellationToken)
        {
            _buffer = buffer;
            _waitOnly = waitOnly;
            if (TryPark(cancellationToken, out var version)) return new ValueTask<int>(this, version);
            _buffer = default;
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        /// <summary>On the loop's thread after an edge: the receive, or the wait's end.</summary>
        public void Resume()
        {
            if (_waitOnly)
            {
                Complete(0);
                return;
            }
            var owner = Owner;
            while (true)
            {
                uint edges;
                lock (owner._gate) edges = owner._readEdges;
                var n = owner.Receive(_buffer.Span, out var errno);
                if (n >= 0)
                {
                    if (n > 0 && n < _buffer.Length) owner.Drained(edges);
                    Complete(n);
                    return;
                }
                if (errno == EpollNative.EIntr) continue;
                if (errno != EpollNative.EAgain)
                {
                    Fail(EpollNative.Error(errno));
                    return;
                }
                // An edge with nothing to read (a write edge's hang-up already seen): wait for the next one.
                lock (owner._gate)
                {
                    if (owner._closed) break;
                    if (owner._readEdges != edges) continue;
                    owner._readReady = false;
                    Repark();
                    return;
                }
            }
            Fail(Aborted());
        }

        protected override void Clear() => _buffer = default;

        public int GetResult(short token) => Core.GetResult(token);
    }

    /// <summary>The one send (or wait for writability) that may wait at a time: what is left of it goes out with each write edge.</summary>
    private sealed class SendOperation(EpollSocket owner) : WaitingOperation<bool>(owner), IValueTaskSource
    {
        private ReadOnlyMemory<byte> _data;

        /// <summary>Under the owner's gate, the socket not writable.</summary>
        public ValueTask Park(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            _data = data;
            if (TryPark(cancellationToken, out var version)) return new ValueTask(this, version);
            _data = default;
            return ValueTask.FromCanceled(cancellationToken);
        }

        public void Resume()
        {
            var owner = Owner;
            while (!_data.IsEmpty)
            {
                uint edges;
                lock (owner._gate) edges = owner._writeEdges;
                var n = owner.Transmit(_data.Span, out var errno);
                if (n > 0)
                {
                    _data = _data[n..];
                    if (_data.IsEmpty) break;
                }
                else if (errno == EpollNative.EIntr) continue;
                else if (errno != EpollNative.EAgain)
                {
                    Fail(EpollNative.Error(errno));
                    return;
                }
                // Nothing taken: wait for the next edge (failed outside the gate: the caller's code runs inline).
                lock (owner._gate)
                {
                    if (owner._closed) break;
                    if (owner._writeEdges != edges) continue;
                    owner._writeReady = false;
                    Repark();
                    return;
                }
            }
            if (_data.IsEmpty) Complete(true);
            else Fail(Aborted());
        }

        protected override void Clear() => _data = default;

        public void GetResult(short token) => Core.GetResult(token);
    }
}
