using System.Net;
using System.Net.Sockets;
using Cutover.Proxy.Http1;

namespace Cutover.Tests.Proxy;

/// <summary>The fast path's idle upstream connections (Proxy/Http1/UpstreamPool), on real loopback sockets.</summary>
public class UpstreamPoolTests
{
    /// <summary>
    /// A rent prefers an idle connection whose receives complete on the caller's socket thread (so the exchange stays on
    /// one thread), else takes the most recently returned; a connection past the idle timeout is closed, never rented.
    /// </summary>
    [Fact]
    public async Task A_rent_prefers_the_callers_socket_thread_then_the_newest_and_never_gives_an_expired_connection()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var instance = new TcpListener(IPAddress.Loopback, 0);
        instance.Start();
        try
        {
            using var pool = new UpstreamPool((IPEndPoint)instance.LocalEndpoint);
            var first = await pool.ConnectAsync(Cutover.Platform.SocketEngines.Unknown, -1, timeout.Token);
            var second = await pool.ConnectAsync(Cutover.Platform.SocketEngines.Unknown, -1, timeout.Token);
            var third = await pool.ConnectAsync(Cutover.Platform.SocketEngines.Unknown, -1, timeout.Token);
            var stale = await pool.ConnectAsync(Cutover.Platform.SocketEngines.Unknown, -1, timeout.Token);
            (first.SocketThread, second.SocketThread, third.SocketThread, stale.SocketThread) = (11, 22, 11, 33);
            foreach (var connection in new[] { stale, first, second, third }) pool.Return(connection);
            stale.IdleSince -= (long)UpstreamPool.IdleTimeout.TotalMilliseconds + 1;

            Assert.Same(second, pool.TryRent(22));  // its thread's, though not the newest
            Assert.Same(third, pool.TryRent(44));   // no connection of that thread: the newest
            Assert.Same(first, pool.TryRent(33));   // the expired one of thread 33 is not given: the newest left
            Assert.True(stale.Socket.SafeHandle.IsClosed, "the expired connection was not closed");
            Assert.Null(pool.TryRent(11));
            Assert.Equal(0, pool.IdleCount);
            foreach (var connection in new[] { first, second, third }) connection.Dispose();
        }
        finally
        {
            instance.Stop();
        }
    }

    /// <summary>
    /// When the caller can make a connection on its own socket thread (the agent knows its threads: Platform/SocketEngines),
    /// a rent gives only a connection of that thread, or one that has not waited yet (its first wait puts it there), and
    /// otherwise nothing: another thread's connection would wake that thread for every response, and the caller makes
    /// one of its own instead (measured: 30-80% of a burst's responses crossed threads before, ~1% after; AgentMetricsTests).
    /// </summary>
    [Fact]
    public async Task A_same_thread_rent_gives_only_the_callers_threads_connections_or_unplaced_ones_else_none()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var instance = new TcpListener(IPAddress.Loopback, 0);
        instance.Start();
        try
        {
            using var pool = new UpstreamPool((IPEndPoint)instance.LocalEndpoint);
            var mine = await pool.ConnectAsync(Cutover.Platform.SocketEngines.Unknown, -1, timeout.Token);
            var unplaced = await pool.ConnectAsync(Cutover.Platform.SocketEngines.Unknown, -1, timeout.Token);
            var others = await pool.ConnectAsync(Cutover.Platform.SocketEngines.Unknown, -1, timeout.Token);
            (mine.SocketThread, unplaced.SocketThread, others.SocketThread) = (11, 0, 22);
            // Returned oldest first, so the other thread's is the newest: a preferring rent would fall back to it.
            foreach (var connection in new[] { mine, unplaced, others }) pool.Return(connection);

            Assert.Same(mine, pool.TryRent(11, sameThreadOnly: true));
            Assert.Same(unplaced, pool.TryRent(11, sameThreadOnly: true));
            Assert.Null(pool.TryRent(11, sameThreadOnly: true));
            Assert.Equal(1, pool.IdleCount); // the other thread's stays for that thread
            Assert.Same(others, pool.TryRent(22, sameThreadOnly: true));
            foreach (var connection in new[] { mine, unplaced, others }) connection.Dispose();
        }
        finally
        {
            instance.Stop();
        }
    }
}
