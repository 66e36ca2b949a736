using System.Net;
using Cutover.Platform;
using Cutover.Proxy;
using Cutover.Tests.Platform;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Proxy;

/// <summary>
/// Issue 12, toward step 3: the agent's listeners pass from one <see cref="ProxyListeners"/> to another (the old and
/// the new agent; both in this process here, the sockets still crossing a socketpair as descriptors) under
/// keep-alive load, and no connection is refused or reset on the way.
/// </summary>
public class ListenerHandoverTests
{
    [Fact]
    public async Task Listeners_handed_to_a_second_owner_serve_on_while_the_first_stops_with_no_connection_error()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var address = new IPEndPoint(IPAddress.Loopback, HealthServer.FreePort());
        var old = new ProxyListeners(NullLoggerFactory.Instance);
        await using var adopting = new ProxyListeners(NullLoggerFactory.Instance);
        try
        {
            await old.EnsurePlainListenerAsync(address, timeout.Token); // no app: every answer is the listener's own 404
            await using var load = new LoadGenerator($"http://{address}/", connections: 8, maxDuration: TimeSpan.FromSeconds(30));
            await Wait.UntilAsync(() => load.NowMs > 500, TimeSpan.FromSeconds(5), "load running");

            var (ours, theirs) = FdPassingTests.SocketPair();
            using (ours)
            using (theirs)
            {
                await ListeningSocketHandover.SendAsync(ours, await old.HandedAsync(timeout.Token), timeout.Token);
                await adopting.AdoptAsync(await ListeningSocketHandover.ReceiveAsync(theirs, timeout.Token), timeout.Token);
            }
            // The new owner accepts; the old one stops accepting, finishes its requests, closes its keep-alive
            // connections and closes its copies of the sockets, which the new owner's keep open.
            await old.DisposeAsync();
            var oldGoneMs = load.NowMs;
            await Task.Delay(1000, timeout.Token);
            var samples = await load.StopAsync();

            Assert.Empty(samples.Where(s => s.Status == 0).Select(s => s.Error)); // no refused, reset or timed-out request
            Assert.All(samples, s => Assert.Equal(404, s.Status));
            Assert.True(samples.Count(s => s.StartMs > oldGoneMs) > 50, "the new owner served too little after the old one left");
        }
        finally
        {
            await old.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_same_address_handed_over_twice_is_refused_as_a_whole_and_every_socket_received_is_closed()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var adopting = new ProxyListeners(NullLoggerFactory.Instance);
        var address = new IPEndPoint(IPAddress.Loopback, HealthServer.FreePort());
        var old = new ProxyListeners(NullLoggerFactory.Instance);
        IReadOnlyList<ReceivedListener> received;
        try
        {
            await old.EnsurePlainListenerAsync(address, timeout.Token);
            var (ours, theirs) = FdPassingTests.SocketPair();
            using (ours)
            using (theirs)
            {
                await ListeningSocketHandover.SendAsync(ours, await old.HandedAsync(timeout.Token), timeout.Token);
                received = await ListeningSocketHandover.ReceiveAsync(theirs, timeout.Token);
            }
        }
        finally
        {
            await old.DisposeAsync();
        }
        // Twice the same address: refused as a whole.
        var twice = new[] { received[0], received[0] with { } };
        var e = await Assert.ThrowsAsync<HandoverException>(() => adopting.AdoptAsync(twice, timeout.Token));
        Assert.Equal($"listener {address} was handed over twice, or this agent listens there already", e.Message);
        Assert.True(received[0].Socket.SafeHandle.IsClosed, "the received socket was left open");
        Assert.Empty(await adopting.HandedAsync(timeout.Token));
    }
}
