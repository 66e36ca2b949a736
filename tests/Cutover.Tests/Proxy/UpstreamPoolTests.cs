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
            var first = await pool.ConnectAsync(timeout.Token);
            var second = await pool.ConnectAsync(timeout.Token);
            var third = await pool.ConnectAsync(timeout.Token);
            var stale = await pool.ConnectAsync(timeout.Token);
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
}
