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

    private UpstreamConnection(Socket socket, int socketEngine)
    {
        Socket = socket;
        SocketEngine = socketEngine;
    }

    /// <summary>The socket thread (<see cref="Platform.SocketEngines"/> index) it was made for, -1 for any.</summary>
    public int SocketEngine { get; }

    public Socket Socket { get; }
    public byte[] Buffer { get; private set; } = new byte[InitialBuffer];
    /// <summary>When it went back to the pool (Environment.TickCount64).</summary>
    public long IdleSince { get; set; }
    /// <summary>True once it has carried a request: a failure before any response byte may be the instance closing an idle connection.</summary>
    public bool Reused { get; set; }
    /// <summary>
    /// The socket thread its receives complete on (the managed thread id; 0 until one completed asynchronously). With
    /// inline socket completions each socket belongs to one epoll thread, chosen by .NET when it is first used;
    /// <see cref="UpstreamPool.TryRent"/> prefers a connection of the thread the client's request arrived on, so the
    /// whole exchange runs on one thread as in an nginx worker, instead of waking a second one for the response.
    /// </summary>
    public int SocketThread { get; set; }

    /// <param name="socketEngine">The socket thread to put it on (the client's), -1 for wherever .NET puts it.</param>
    public static async ValueTask<UpstreamConnection> ConnectAsync(IPEndPoint endpoint, Platform.SocketEngines engines, int socketEngine, CancellationToken cancellationToken)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            connectTimeout.CancelAfter(UpstreamPool.ConnectTimeout);
            // A connect that waits for the handshake is the socket's first wait; one that completes at once leaves it to the first receive.
            engines.Pin(socketEngine);
            await socket.ConnectAsync(endpoint, connectTimeout.Token);
            return new UpstreamConnection(socket, socketEngine);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new SocketException((int)SocketError.TimedOut);
        }
        catch
        {
            socket.Dispose();
            throw;
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
            return Socket.Poll(0, SelectMode.SelectRead);
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

    public void Dispose() => Socket.Dispose();
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
    /// <summary>How far down the idle list a connection of the caller's socket thread is looked for.</summary>
    private const int AffinityScan = 16;
    private readonly object _lock = new();
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
    /// An idle connection not past its idle timeout, or null: among the most recently used, one whose receives complete
    /// on <paramref name="socketThread"/> (the caller's: see <see cref="UpstreamConnection.SocketThread"/>) when there is
    /// one, else the most recently used.
    /// </summary>
    /// <param name="sameThreadOnly">
    /// Only a connection of <paramref name="socketThread"/>, else null (the caller makes one there): each socket thread
    /// keeps connections of its own, as each nginx worker keeps its own upstream keep-alive connections. For when the
    /// caller can place a new connection on its thread (<see cref="Platform.SocketEngines"/>); otherwise taking another
    /// thread's connection is no worse than a new one.
    /// </param>
    public UpstreamConnection? TryRent(int socketThread, bool sameThreadOnly = false)
    {
        var now = Environment.TickCount64;
        lock (_lock)
        {
            // In return order, so expired connections are at the bottom.
            var stale = 0;
            while (stale < _idle.Count && now - _idle[stale].IdleSince >= (long)IdleTimeout.TotalMilliseconds) _idle[stale++].Dispose();
            _idle.RemoveRange(0, stale);
            var last = _idle.Count - 1;
            if (last < 0) return null;
            var pick = -1;
            // Same-thread only: a connection that never waited (SocketThread 0) is on no thread yet, and its first wait
            // puts it on the caller's; taken when the thread has none of its own.
            var unplaced = -1;
            var scan = sameThreadOnly ? _idle.Count : AffinityScan;
            for (var i = last; i >= 0 && i > last - scan; i--)
            {
                var thread = _idle[i].SocketThread;
                if (thread == socketThread)
                {
                    pick = i;
                    break;
                }
                if (thread == 0 && unplaced < 0) unplaced = i;
            }
            if (pick < 0) pick = sameThreadOnly ? unplaced : last;
            if (pick < 0) return null;
            var connection = _idle[pick];
            _idle.RemoveAt(pick);
            return connection;
        }
    }

    /// <summary>A new connection to the instance, on socket thread <paramref name="socketEngine"/> (-1: any).</summary>
    public ValueTask<UpstreamConnection> ConnectAsync(Platform.SocketEngines engines, int socketEngine, CancellationToken cancellationToken) =>
        UpstreamConnection.ConnectAsync(Endpoint, engines, socketEngine, cancellationToken);

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
