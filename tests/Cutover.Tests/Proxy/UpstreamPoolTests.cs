using System.Net;
using System.Net.Sockets;
using Cutover.Proxy.Http1;

namespace Cutover.Tests.Proxy;

/// <summary>The fast path's idle upstream connections (Proxy/Http1/UpstreamPool), on real loopback sockets.</summary>
public class UpstreamPoolTests
{
    /// <summary>
    /// A rent gives the newest idle connection of the caller's socket thread (the loop that watches it), never one of
    /// another thread (that would wake the other thread for every response: the caller makes one of its own instead,
    /// as each nginx worker keeps its own), and never one past the idle timeout, which is closed.
    /// </summary>
    [Fact]
    public async Task A_rent_gives_the_newest_connection_of_the_callers_socket_thread_only_and_never_an_expired_one()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var loops = new Cutover.Platform.Epoll.EpollLoops(e => throw e, count: 2);
        var (mine, others) = (loops[0], loops[1]);
        var instance = new TcpListener(IPAddress.Loopback, 0);
        instance.Start();
        try
        {
            using var pool = new UpstreamPool((IPEndPoint)instance.LocalEndpoint);
            var older = await pool.ConnectAsync(mine, timeout.Token);
            var newer = await pool.ConnectAsync(mine, timeout.Token);
            var stale = await pool.ConnectAsync(mine, timeout.Token);
            var theirs = await pool.ConnectAsync(others, timeout.Token);
            Assert.Same(mine, older.Io.Loop);
            Assert.Same(others, theirs.Io.Loop);
            // Returned oldest first, the other thread's last: it is the newest of all.
            foreach (var connection in new[] { stale, older, newer, theirs }) pool.Return(connection);
            stale.IdleSince -= (long)UpstreamPool.IdleTimeout.TotalMilliseconds + 1;

            Assert.Same(newer, pool.TryRent(mine));
            Assert.Same(older, pool.TryRent(mine));
            Assert.Null(pool.TryRent(mine)); // the expired one is not given, nor the other thread's
            Assert.True(stale.Io.Handle.IsClosed, "the expired connection was not closed");
            Assert.Equal(1, pool.IdleCount); // the other thread's stays for that thread
            Assert.Same(theirs, pool.TryRent(others));
            foreach (var connection in new[] { older, newer, theirs }) connection.Dispose();
            Assert.Equal(0, mine.RegisteredCount + others.RegisteredCount);
        }
        finally
        {
            instance.Stop();
        }
    }
}
