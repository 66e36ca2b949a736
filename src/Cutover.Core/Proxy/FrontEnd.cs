using System.Collections.Concurrent;
using System.Net.Sockets;

namespace Cutover.Proxy;

/// <summary>
/// A listener's own accept loop (<see cref="PlainFrontEnd"/>, <see cref="TlsFrontEnd"/>), in place of Kestrel's socket
/// transport: each accepted connection starts on the thread that accepted it (with inline socket completions, the
/// epoll thread) instead of being queued to the thread pool as Kestrel's accept loop does, and goes to Http1/'s fast
/// path; Kestrel's HTTP pipeline gets only what the fast path hands over, through <see cref="HandOverTransport"/>.
/// </summary>
internal abstract class FrontEnd
{
    private readonly Socket _listening;
    private readonly ConcurrentDictionary<FrontEndConnection, byte> _open = new();
    private readonly CancellationTokenSource _stopAccepting = new();
    private Task _acceptLoops = Task.CompletedTask;
    /// <summary>Second descriptors of the listening socket, one per further socket thread, each accepted on by its thread.</summary>
    private Socket[] _duplicates = [];

    protected FrontEnd(Listener listener, Socket listening, HandOverTransport kestrel)
    {
        Listener = listener;
        _listening = listening;
        Kestrel = kestrel;
        // Linux copies TCP_NODELAY from the listening socket to every socket it accepts: set once here, not with a
        // setsockopt(2) per connection (one of the syscalls a new connection made beyond the TLS floor's, bench/README.md).
        listening.NoDelay = true;
    }

    /// <summary>Where connections go that Kestrel's HTTP pipeline serves.</summary>
    public HandOverTransport Kestrel { get; }

    public Listener Listener { get; }

    /// <summary>Connections open now (accepted, not yet closed), handed to Kestrel or not.</summary>
    internal int OpenConnections => _open.Count;

    /// <summary>The connection for a socket just accepted (not started yet).</summary>
    protected abstract FrontEndConnection Accepted(Socket socket);

    /// <summary>Called once every connection has closed, at the end of <see cref="StopAsync"/>.</summary>
    protected virtual void Stopped()
    {
    }

    public void Start()
    {
        // The agent starts listeners from flows under Platform/ThreadPoolContext, whose awaits resume on the thread pool:
        // the accept loop, and every connection it starts, must resume instead on the socket thread that completed the
        // operation (inline socket completions), with none of the starting flow's context. Captured, the context
        // posted every continuation of every connection to the pool (5 hand-offs per new TLS connection, measured).
        var previous = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            // One accept loop per socket thread, each on a descriptor of the listening socket watched by that thread: a
            // new connection wakes them all, one accepts it, and the first part of its work (a TLS handshake's first flight,
            // the costliest) runs on the thread that was free, not always on the one thread that watches the listening socket.
            var engines = Listener.SocketEngines;
            _duplicates = engines.Count < 2 ? []
                : [.. Enumerable.Range(1, engines.Count - 1).Select(_ => new Socket(new SafeSocketHandle(
                    Platform.LibC.DuplicateCloseOnExec((int)_listening.SafeHandle.DangerousGetHandle()), ownsHandle: true)))];
            Socket[] acceptors = [_listening, .. _duplicates];
            using (ExecutionContext.SuppressFlow())
                _acceptLoops = Task.WhenAll(acceptors.Select((acceptor, engine) => AcceptLoopAsync(acceptor, engines.Count < 2 ? -1 : engine)));
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(previous);
        }
    }

    /// <param name="engine">The socket thread that is to watch <paramref name="acceptor"/> (-1: wherever .NET puts it).</param>
    private async Task AcceptLoopAsync(Socket acceptor, int engine)
    {
        var placed = false;
        while (true)
        {
            Socket socket;
            try
            {
                if (!placed) Listener.SocketEngines.Pin(engine);
                var accepting = acceptor.AcceptAsync(_stopAccepting.Token);
                placed |= !accepting.IsCompleted;
                socket = await accepting;
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                // A connection reset while queued, or out of descriptors: the next one may do; do not spin on a lasting error.
                try { await Task.Delay(10, _stopAccepting.Token); } catch (OperationCanceledException) { return; }
                continue;
            }
            var connection = Accepted(socket);
            _open[connection] = 0;
            // Runs up to its first wait for the network on this thread: no hand-off to the thread pool.
            _ = connection.RunAsync();
        }
    }

    internal void Closed(FrontEndConnection connection) => _open.TryRemove(connection, out _);

    /// <summary>
    /// Stops accepting, asks every connection to close (idle ones at once, busy ones after their response) and waits
    /// for them until <paramref name="drained"/>; what is still open then is cut. Connections Kestrel serves are closed
    /// by Kestrel's own stop, which runs beside this.
    /// </summary>
    public async Task StopAsync(CancellationToken drained)
    {
        _stopAccepting.Cancel();
        await _acceptLoops;
        // Only this process's second descriptors: the listening socket itself is the listener's (and may be handed over).
        // No accept is pending on them now (the loops ended), so .NET closes them without the shutdown it uses to unblock
        // pending operations, which would stop the shared listening socket for every descriptor of it.
        foreach (var duplicate in _duplicates) duplicate.Dispose();
        foreach (var connection in _open.Keys) connection.RequestClose();
        try
        {
            await Task.WhenAll(_open.Keys.Select(c => c.Completion)).WaitAsync(drained);
        }
        catch (OperationCanceledException)
        {
            foreach (var connection in _open.Keys) connection.Abort();
            await Task.WhenAll(_open.Keys.Select(c => c.Completion));
        }
        _stopAccepting.Dispose();
        Stopped();
    }
}
