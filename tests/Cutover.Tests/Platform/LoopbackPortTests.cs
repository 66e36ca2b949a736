using System.Net;
using System.Net.Sockets;
using Cutover.Platform;

namespace Cutover.Tests.Platform;

public class LoopbackPortTests
{
    [Fact]
    public void Ports_come_from_below_the_ephemeral_range_so_outgoing_connections_never_take_them()
    {
        var low = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0]);
        for (var i = 0; i < 50; i++)
        {
            var port = LoopbackPort.Free();
            Assert.InRange(port, 10000, low - 1);
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start(); // free means bindable
        }
    }

    [Fact]
    public void A_port_someone_listens_on_is_never_handed_out()
    {
        var taken = new List<TcpListener>();
        try
        {
            var seen = new HashSet<int>();
            for (var i = 0; i < 200; i++)
            {
                var port = LoopbackPort.Free();
                Assert.True(seen.Add(port), $"port {port} was handed out while something listens on it");
                var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                taken.Add(listener);
            }
        }
        finally
        {
            foreach (var listener in taken) listener.Stop();
        }
    }

    [Fact]
    public async Task Callers_at_the_same_moment_never_get_the_same_port()
    {
        // Nothing binds the ports here, so to the kernel every one stays free: only the
        // process's own memory of what it handed out keeps two callers off the same port.
        var batches = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
            Enumerable.Range(0, 250).Select(_ => LoopbackPort.Free()).ToList())));
        var all = batches.SelectMany(b => b).ToList();
        var twice = all.GroupBy(p => p).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(twice.Count == 0, $"{twice.Count} ports handed out twice, e.g. {string.Join(", ", twice.Take(5))}");
    }
}
