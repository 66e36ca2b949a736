using System.Net;
using System.Net.Sockets;

namespace Cutover.Proxy.Http1;

/// <summary>
/// One HTTP/1.1 connection to an instance: its socket and the buffer responses are read into (kept with the
/// connection, so a response head never needs a second buffer).
/// </summary>
internal sealed class UpstreamConnection : IDisposable
{
    private const int InitialBuffer = 16 * 1024;

    private UpstreamConnection(Platform.Epoll.EpollSocket io) => Io = io;

    /// <summary>The socket, watched by the socket thread (<see cref="Platform.Epoll.EpollLoop"/>) of the client it was made for.</summary>
    public Platform.Epoll.EpollSocket Io { get; }
    public byte[] Buffer { get; private set; } = new byte[InitialBuffer];
    /// <summary>When it went back to the pool (Environment.TickCount64).</summary>
    public long IdleSince { get; set; }
    /// <summary>True once it has carried a request: a failure before any response byte may be the instance closing an idle connection.</summary>
    public bool Reused { get; set; }

    /// <param name="loop">The socket thread to watch it: the client's, so the whole exchange runs on one thread.</param>
    public static async ValueTask<UpstreamConnection> ConnectAsync(IPEndPoint endpoint, Platform.Epoll.EpollLoop loop, CancellationToken cancellationToken)
    {
        using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        connectTimeout.CancelAfter(UpstreamPool.ConnectTimeout);
        try
        {
            return new UpstreamConnection(await Platform.Epoll.EpollSocket.ConnectAsync(endpoint, loop, connectTimeout.Token));
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new SocketException((int)SocketError.TimedOut);
        }
    }

    /// <summary>Doubles the buffer, up to <paramref name="max"/>; false when it is that large already.</summary>
    public bool TryGrow(int used, int max)
    {
        if (Buffer.Length >= max) return false;
        var larger = new byte[Math.Min(Buffer.Length * 2, max)];
        Buffer.AsSpan(0, used).CopyTo(larger);
        Buffer = larger;
        return true;
    }

    /// <summary>Whether the instance has closed it (or sent something unasked) while it sat idle: then it must not carry a request.</summary>
    public bool LooksClosed()
    {
        try
        {
            return Io.PollReadable();
        }
        catch (SocketException)
        {
            return true;
        }
        catch (ObjectDisposedException)
        {
            return true;
        }
    }

    public void Dispose() => Io.Dispose();
}

/// <summary>
/// The idle HTTP/1.1 connections to one instance (<see cref="Backend"/>), most recently used first. A connection comes back only
/// after a response read completely whose instance did not say close; idle ones are closed after
/// <see cref="IdleTimeout"/>, below Node's 5 s keep-alive, so a connection the instance is closing is seldom reused
/// (and a request that meets one anyway is retried on a fresh connection).
/// </summary>
internal sealed class UpstreamPool(IPEndPoint endpoint) : IDisposable
{
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(4);
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);
    /// <summary>More idle connections than this are closed rather than kept (a burst's leftovers).</summary>
    private const int MaxIdle = 256;

    /// <summary>Idle connections, the most recently returned last.</summary>
    private readonly List<UpstreamConnection> _idle = [];
    private readonly Lock _lock = new();
    private Timer? _sweeper;
    private bool _sweeping;
    private bool _disposed;

    public IPEndPoint Endpoint { get; } = endpoint;

    public int IdleCount
    {
        get
        {
            lock (_lock) return _idle.Count;
        }
    }

    /// <summary>
    /// The most recently used idle connection of socket thread <paramref name="loop"/> not past its idle timeout, or
    /// null (the caller makes one there): each socket thread keeps connections of its own, as each nginx worker keeps
    /// its own upstream keep-alive connections.
    /// </summary>
    public UpstreamConnection? TryRent(Platform.Epoll.EpollLoop loop)
    {
        var now = Environment.TickCount64;
        lock (_lock)
        {
            // In return order, so expired connections are at the bottom.
            var stale = 0;
            while (stale < _idle.Count && now - _idle[stale].IdleSince >= (long)IdleTimeout.TotalMilliseconds) _idle[stale++].Dispose();
            _idle.RemoveRange(0, stale);
            for (var i = _idle.Count - 1; i >= 0; i--)
            {
                var connection = _idle[i];
                if (connection.Io.Loop != loop) continue;
                _idle.RemoveAt(i);
                return connection;
            }
            return null;
        }
    }

    /// <summary>A new connection to the instance, watched by socket thread <paramref name="loop"/>.</summary>
    public ValueTask<UpstreamConnection> ConnectAsync(Platform.Epoll.EpollLoop loop, CancellationToken cancellationToken) =>
        UpstreamConnection.ConnectAsync(Endpoint, loop, cancellationToken);
    public void Return(UpstreamConnection connection)
    {
        connection.Reused = true;
        connection.IdleSince = Environment.TickCount64;
        lock (_lock)
        {
            if (!_disposed && _idle.Count < MaxIdle)
            {
                _idle.Add(connection);
                if (!_sweeping)
                {
                    // The sweeper runs only while something is idle, so a backend that left the pool leaves no timer behind.
                    _sweeping = true;
                    _sweeper ??= new Timer(static state => ((UpstreamPool)state!).Sweep(), this, Timeout.Infinite, Timeout.Infinite);
                    _sweeper.Change(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
                }
                return;
            }
        }
        connection.Dispose();
    }

    private void Sweep()
    {
        var now = Environment.TickCount64;
        List<UpstreamConnection>? expired = null;
        lock (_lock)
        {
            if (_idle.Count == 0)
            {
                _sweeping = false;
                _sweeper?.Change(Timeout.Infinite, Timeout.Infinite);
                return;
            }
            // In return order, oldest first: close the expired ones at the bottom, keep the rest.
            var stale = 0;
            while (stale < _idle.Count && now - _idle[stale].IdleSince >= (long)IdleTimeout.TotalMilliseconds) stale++;
            if (stale == 0) return;
            expired = _idle.GetRange(0, stale);
            _idle.RemoveRange(0, stale);
        }
        foreach (var connection in expired) connection.Dispose();
    }

    /// <summary>Closes the idle connections now (the instance was drained); connections in use come back as usual.</summary>
    public void CloseIdle()
    {
        lock (_lock)
        {
            foreach (var connection in _idle) connection.Dispose();
            _idle.Clear();
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _sweeper?.Dispose();
            foreach (var connection in _idle) connection.Dispose();
            _idle.Clear();
        }
    }
}
