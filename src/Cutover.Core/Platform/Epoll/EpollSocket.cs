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
    /// <summary>The peer's end (or an error) is pending: a receive gets it at once, however short the read before it.</summary>
    private const uint ReadEndEvents = EpollNative.EpollRdHup | EpollNative.EpollHup | EpollNative.EpollErr;
    /// <summary>The connection is gone (or failed): a send gets the error at once.</summary>
    private const uint WriteEndEvents = EpollNative.EpollHup | EpollNative.EpollErr;

    private readonly int _fd;
    private readonly ReceiveOperation _receive;
    private readonly SendOperation _send;
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
        _receive = new ReceiveOperation(this);
        _send = new SendOperation(this, ready: !connecting);
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
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (loop.Descriptors.IsReserved(socket.SafeHandle.DangerousGetHandle()))
        {
            socket.Dispose();
            throw new SocketException((int)SocketError.TooManyOpenSockets);
        }
        socket.NoDelay = true;
        socket.Blocking = false;
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

    /// <summary>Both sides' state words, for diagnostics: "receive Ready|Parked edges 3, send Ready edges 1".</summary>
    public override string ToString() => $"fd {_fd}: receive {Side.Describe(_receive.State)}, send {Side.Describe(_send.State)}";

    /// <summary>recv(2) and send(2) calls made so far (what the readiness it remembers saves is counted by tests).</summary>
    internal long Calls => Volatile.Read(ref _receive.Calls) + Volatile.Read(ref _send.Calls);

    /// <summary>Bytes received (0: the peer closed its side).</summary>
    public ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return WaitReadableAsync(cancellationToken);
        while (true)
        {
            var state = _receive.State;
            if (Side.IsClosed(state)) return ValueTask.FromException<int>(Aborted());
            if (!Side.IsReady(state))
            {
                if (_receive.TryPark(state, buffer, waitOnly: false, cancellationToken, out var waiting)) return waiting;
                continue;
            }
            var n = Receive(buffer.Span, out var errno);
            if (n >= 0)
            {
                if (n > 0 && n < buffer.Length) _receive.Short(state);
                return ValueTask.FromResult(n);
            }
            if (errno == EpollNative.EAgain) _receive.Drained(state);
            else if (errno != EpollNative.EIntr) return ValueTask.FromException<int>(EpollNative.Error(errno));
        }
    }

    /// <summary>Completes (with 0) once there is something to read, or the end: consumes nothing, and makes no call when it already knows.</summary>
    public ValueTask<int> WaitReadableAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var state = _receive.State;
            if (Side.IsClosed(state)) return ValueTask.FromException<int>(Aborted());
            if (Side.IsReady(state)) return ValueTask.FromResult(0);
            if (_receive.TryPark(state, Memory<byte>.Empty, waitOnly: true, cancellationToken, out var waiting)) return waiting;
        }
    }

    /// <summary>
    /// The socket was found empty by something other than <see cref="ReceiveAsync"/> (OpenSSL's own read(2) wanted
    /// more): the next wait waits for epoll. <paramref name="edges"/> is <see cref="ReadEdges"/> from before that read.
    /// </summary>
    public void ReadFoundEmpty(uint edges) => _receive.DrainedAt(edges);

    /// <summary>The count of readiness edges, to take before a read made outside <see cref="ReceiveAsync"/> (<see cref="ReadFoundEmpty"/>).</summary>
    public uint ReadEdges => Side.Edges(_receive.State);

    /// <summary>Sends all of <paramref name="data"/>, waiting for room as often as it takes.</summary>
    public ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        while (!data.IsEmpty)
        {
            var state = _send.State;
            if (Side.IsClosed(state)) return ValueTask.FromException(Aborted());
            if (!Side.IsReady(state))
            {
                if (_send.TryPark(state, data, cancellationToken, out var waiting)) return waiting;
                continue;
            }
            var n = Transmit(data.Span, out var errno);
            if (n > 0)
            {
                data = data[n..];
                if (!data.IsEmpty) _send.Short(state);
            }
            else if (errno == EpollNative.EAgain) _send.Drained(state);
            else if (errno != EpollNative.EIntr) return ValueTask.FromException(EpollNative.Error(errno));
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>Completes once the socket is writable (a connect finished, or failed: then SO_ERROR says how).</summary>
    public ValueTask WaitWritableAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var state = _send.State;
            if (Side.IsClosed(state)) return ValueTask.FromException(Aborted());
            if (Side.IsReady(state)) return ValueTask.CompletedTask;
            if (_send.TryPark(state, ReadOnlyMemory<byte>.Empty, cancellationToken, out var waiting)) return waiting;
        }
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
        var resumeReceive = (events & ReadEvents) != 0 && _receive.Edge(ended: (events & ReadEndEvents) != 0);
        var resumeSend = (events & WriteEvents) != 0 && _send.Edge(ended: (events & WriteEndEvents) != 0);
        if (resumeReceive) _receive.Resume();
        if (resumeSend) _send.Resume();
    }

    /// <summary>Fails what waits (the connection is being torn down) without closing; <see cref="Dispose"/> closes.</summary>
    internal void Abort()
    {
        if (_receive.Close()) _receive.Fail(Aborted());
        if (_send.Close()) _send.Fail(Aborted());
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
        // No epoll_ctl(DEL): the close takes the descriptor out of the epoll set (it is this process's only reference to
        // the socket: close-on-exec, never duplicated), as nginx relies on. Until then (a call in flight holds the
        // descriptor a moment longer) an event for it carries this slot's old generation and is dropped.
        if (Slot >= 0) Loop.Forget(this);
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
        _receive.Calls++;
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
        _send.Calls++;
        try { return EpollNative.Send(_fd, data, out errno); }
        finally { Handle.DangerousRelease(); }
    }

    private const int EBadF = 9;

    /// <summary>
    /// A side's state word: Ready (epoll's last edge said so, and no call since found the socket empty or full), Parked
    /// (an operation waits for the next edge), Closed, Ended (an edge carried the peer's end, a hang-up or an error:
    /// sticky, and the side stays ready for good, as nginx's pending_eof keeps a short read from clearing ready), and
    /// above those bits a count of edges, so that finding the socket empty counts only if no edge came since. Every
    /// change is one compare-and-swap, no lock: whoever clears Parked (an edge, the waiting operation's token, an abort)
    /// completes the waiting operation.
    /// </summary>
    /// <remarks>
    /// Why Ended: data and the peer's FIN (or RST) that arrive before the loop looks are one edge. The short read of the
    /// data leaves the end still to be read, and no edge will come for it; without Ended the next receive would wait
    /// for one forever (a connection its client had left, never closed: PlainFrontEndTests met it under load).
    /// </remarks>
    private static class Side
    {
        public const int Ready = 1;
        public const int Parked = 2;
        public const int Closed = 4;
        public const int Ended = 8;
        public const int EdgeUnit = 16;

        public static bool IsReady(int state) => (state & Ready) != 0;
        public static bool IsClosed(int state) => (state & Closed) != 0;
        public static bool IsEnded(int state) => (state & Ended) != 0;
        public static uint Edges(int state) => (uint)state >> 4;

        public static string Describe(int state) =>
            $"{(IsReady(state) ? "ready" : "not-ready")}{((state & Parked) != 0 ? " parked" : "")}{(IsClosed(state) ? " closed" : "")}{(IsEnded(state) ? " ended" : "")} edges {Edges(state)}";
    }

    private enum Parking
    {
        Waiting,
        StateChanged,
        Closed,
    }

    /// <summary>
    /// One side of the socket (receiving, sending): its state word (<see cref="Side"/>) and the one operation that may
    /// wait on it, reused (no allocation per wait), completed once.
    /// </summary>
    private abstract class WaitingOperation<TResult>(EpollSocket owner, bool ready)
    {
        protected ManualResetValueTaskSourceCore<TResult> Core;
        private int _state = ready ? Side.Ready : 0;
        private CancellationToken _token;
        private CancellationTokenRegistration _registration;

        /// <summary>This side's recv(2) or send(2) calls: counted by its one caller at a time.</summary>
        public long Calls;

        protected EpollSocket Owner => owner;

        public int State => Volatile.Read(ref _state);

        /// <summary>A call failed with EAGAIN when the state was <paramref name="seen"/>: not ready, unless an edge came since.</summary>
        public void Drained(int seen) => DrainedAt(Side.Edges(seen));

        /// <summary>
        /// A read got less than it asked for (a send took less than it was given) when the state was <paramref name="seen"/>:
        /// the socket is empty (full), so not ready, unless an edge came since or the side has ended: then what is left is
        /// the end or the error, which the next call gets at once and no edge will announce.
        /// </summary>
        public void Short(int seen)
        {
            if (!Side.IsEnded(State)) Drained(seen);
        }

        public void DrainedAt(uint edges)
        {
            while (true)
            {
                var state = State;
                if (Side.Edges(state) != edges || !Side.IsReady(state)) return;
                if (Interlocked.CompareExchange(ref _state, state & ~Side.Ready, state) == state) return;
            }
        }

        /// <summary>
        /// On the loop's thread: an edge made this side ready (for good when it <paramref name="ended"/> it). True if an
        /// operation was waiting (the caller resumes it).
        /// </summary>
        public bool Edge(bool ended)
        {
            while (true)
            {
                var state = State;
                if (Side.IsClosed(state)) return false;
                var next = ((state + Side.EdgeUnit) | Side.Ready | (ended ? Side.Ended : 0)) & ~Side.Parked;
                if (Interlocked.CompareExchange(ref _state, next, state) == state) return (state & Side.Parked) != 0;
            }
        }

        /// <summary>Closes this side. True if an operation was waiting (the caller fails it).</summary>
        public bool Close()
        {
            while (true)
            {
                var state = State;
                if (Side.IsClosed(state)) return false;
                if (Interlocked.CompareExchange(ref _state, (state | Side.Closed) & ~Side.Parked, state) == state) return (state & Side.Parked) != 0;
            }
        }

        /// <summary>
        /// Waits for the next edge, the side seen not ready and open in <paramref name="seen"/>; StateChanged when it was
        /// not so any more (the caller looks again). The token's callback is registered before the operation is
        /// published as waiting, and the token looked at once more after: a cancellation in between is not lost.
        /// </summary>
        protected Parking TryPark(int seen, CancellationToken cancellationToken, out short version)
        {
            if ((seen & Side.Parked) != 0) throw new InvalidOperationException($"a {GetType().Name} is already waiting on this socket");
            Core.Reset();
            version = Core.Version;
            _token = cancellationToken;
            _registration = cancellationToken.CanBeCanceled
                ? cancellationToken.UnsafeRegister(static (state, _) => ((WaitingOperation<TResult>)state!).Cancel(), this)
                : default;
            if (Interlocked.CompareExchange(ref _state, seen | Side.Parked, seen) != seen)
            {
                TakeRegistration().Unregister();
                return Parking.StateChanged;
            }
            if (cancellationToken.IsCancellationRequested) Cancel();
            return Parking.Waiting;
        }

        /// <summary>From <c>Resume</c>: the edge found nothing after all (seen in <paramref name="seen"/> before the call); wait for the next one.</summary>
        protected Parking TryRepark(int seen)
        {
            while (true)
            {
                var state = State;
                if (Side.IsClosed(state)) return Parking.Closed;
                if (Side.Edges(state) != Side.Edges(seen)) return Parking.StateChanged;
                if (Interlocked.CompareExchange(ref _state, (state & ~Side.Ready) | Side.Parked, state) != state) continue;
                if (_token.IsCancellationRequested) Cancel();
                return Parking.Waiting;
            }
        }

        /// <summary>
        /// The token's callback. Only while an operation of a cancelled token waits: a callback that lost the race with
        /// completion may find the next operation parked, whose token (if it is not the same one) is not cancelled.
        /// </summary>
        private void Cancel()
        {
            while (true)
            {
                var state = State;
                if ((state & Side.Parked) == 0) return;
                var token = _token;
                if (!token.IsCancellationRequested) return;
                if (Interlocked.CompareExchange(ref _state, state & ~Side.Parked, state) != state) continue;
                Fail(new OperationCanceledException(token));
                return;
            }
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
    private sealed class ReceiveOperation(EpollSocket owner) : WaitingOperation<int>(owner, ready: true), IValueTaskSource<int>
    {
        private Memory<byte> _buffer;
        private bool _waitOnly;

        /// <summary>The socket seen not readable in <paramref name="seen"/>: waits; false when that changed meanwhile.</summary>
        public bool TryPark(int seen, Memory<byte> buffer, bool waitOnly, CancellationToken cancellationToken, out ValueTask<int> waiting)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                waiting = ValueTask.FromCanceled<int>(cancellationToken);
                return true;
            }
            _buffer = buffer;
            _waitOnly = waitOnly;
            if (TryPark(seen, cancellationToken, out var version) == Parking.Waiting)
            {
                waiting = new ValueTask<int>(this, version);
                return true;
            }
            _buffer = default;
            waiting = default;
            return false;
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
                var state = State;
                var n = owner.Receive(_buffer.Span, out var errno);
                if (n >= 0)
                {
                    if (n > 0 && n < _buffer.Length) Short(state);
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
                switch (TryRepark(state))
                {
                    case Parking.Waiting: return;
                    case Parking.Closed: Fail(Aborted()); return;
                }
            }
        }

        protected override void Clear() => _buffer = default;

        public int GetResult(short token) => Core.GetResult(token);
    }

    /// <summary>The one send (or wait for writability) that may wait at a time: what is left of it goes out with each write edge.</summary>
    private sealed class SendOperation(EpollSocket owner, bool ready) : WaitingOperation<bool>(owner, ready), IValueTaskSource
    {
        private ReadOnlyMemory<byte> _data;

        /// <summary>The socket seen not writable in <paramref name="seen"/>: waits; false when that changed meanwhile.</summary>
        public bool TryPark(int seen, ReadOnlyMemory<byte> data, CancellationToken cancellationToken, out ValueTask waiting)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                waiting = ValueTask.FromCanceled(cancellationToken);
                return true;
            }
            _data = data;
            if (TryPark(seen, cancellationToken, out var version) == Parking.Waiting)
            {
                waiting = new ValueTask(this, version);
                return true;
            }
            _data = default;
            waiting = default;
            return false;
        }

        public void Resume()
        {
            var owner = Owner;
            while (!_data.IsEmpty)
            {
                var state = State;
                var n = owner.Transmit(_data.Span, out var errno);
                if (n > 0)
                {
                    _data = _data[n..];
                    if (_data.IsEmpty) break;
                    if (Side.IsEnded(State)) continue; // taken in part, then a hang-up: the next send gets the error
                }
                else if (errno == EpollNative.EIntr) continue;
                else if (errno != EpollNative.EAgain)
                {
                    Fail(EpollNative.Error(errno));
                    return;
                }
                // Taken in part (the buffer is full) or not at all: wait for the next edge.
                switch (TryRepark(state))
                {
                    case Parking.Waiting: return;
                    case Parking.Closed: Fail(Aborted()); return;
                }
            }
            Complete(true);
        }

        protected override void Clear() => _data = default;

        public void GetResult(short token) => Core.GetResult(token);
    }
}
