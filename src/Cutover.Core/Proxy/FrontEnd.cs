using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Cutover.Proxy;

/// <summary>
/// A listener's own accepting (<see cref="PlainFrontEnd"/>, <see cref="TlsFrontEnd"/>), in place of Kestrel's socket
/// transport: every socket thread of the agent (Platform/Epoll) accepts on a descriptor of the listening socket of its
/// own, as each nginx worker does, and a connection starts on the thread that accepted it and normally stays there (a
/// TLS handshake, the request, the upstream exchange: one thread, no hand-off); it goes to Http1/'s fast path, and
/// Kestrel's HTTP pipeline gets only what the fast path hands over, through <see cref="HandOverTransport"/>.
/// </summary>
internal abstract class FrontEnd
{
    private readonly Socket _listening;
    private readonly ConcurrentDictionary<FrontEndConnection, byte> _open = new();
    private Platform.Epoll.EpollAcceptor[] _acceptors = [];
    private volatile bool _stopping;

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

    /// <summary>The open connections, each as where it is (FrontEndConnection.ToString): what a test reports when one never closes.</summary>
    internal string DescribeOpen() => string.Join("; ", _open.Keys.Select(c => c.ToString()));

    /// <summary>The connection for a descriptor just accepted (not started yet), watched by <paramref name="loop"/>.</summary>
    protected abstract FrontEndConnection Accepted(Platform.Epoll.SocketDescriptor socket, IPEndPoint? peer, Platform.Epoll.EpollLoop loop);

    /// <summary>Called once every connection has closed, at the end of <see cref="StopAsync"/>.</summary>
    protected virtual void Stopped()
    {
    }

    public void Start()
    {
        // Each loop's accept may meet an empty queue (another loop took the connection): it must not block.
        _listening.Blocking = false;
        _acceptors = [.. Enumerable.Range(0, Listener.Loops.Count).Select(i => new Platform.Epoll.EpollAcceptor(Listener.Loops[i], _listening, OnAccepted))];
    }

    /// <summary>On the accepting loop's thread: the connection starts here, up to its first wait for the network.</summary>
    private void OnAccepted(Platform.Epoll.EpollLoop accepting, Platform.Epoll.SocketDescriptor socket, IPEndPoint? peer)
    {
        FrontEndConnection connection;
        try
        {
            connection = Accepted(socket, peer, Listener.Loops.ForAccepted(accepting));
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // The loop is stopping (the listener's own loops at its end): the connection cannot be watched.
            socket.Dispose();
            return;
        }
        _open[connection] = 0;
        // Accepted as the listener stopped: StopAsync may have asked the others to close before this one was in _open.
        if (_stopping) connection.RequestClose();
        _ = connection.RunAsync();
    }

    internal void Closed(FrontEndConnection connection) => _open.TryRemove(connection, out _);

    /// <summary>
    /// Stops accepting, asks every connection to close (idle ones at once, busy ones after their response) and waits
    /// for them until <paramref name="drained"/>; what is still open then is cut. Connections Kestrel serves are closed
    /// by Kestrel's own stop, which runs beside this.
    /// </summary>
    public async Task StopAsync(CancellationToken drained)
    {
        _stopping = true;
        // Only this process's descriptors of the listening socket close: the socket itself is the listener's (and may be
        // handed over, with the connections still queued on it).
        foreach (var acceptor in _acceptors) acceptor.Dispose();
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
        Stopped();
    }
}
