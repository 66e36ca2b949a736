using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// The agent strategies (rolling, blue-green) on two hosts: each host's remote session starts that host's agent (its
/// own CUTOVER_HOME, its own proxy address through proxy_listen) and moves its instances; both proxies serve the new
/// version after, and a fleet rollback brings both back.
/// </summary>
[Collection(FleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetRollingTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output, "node");
    private IEnumerable<SshHost> Hosts => fleet.Hosts.Take(2);

    public void Dispose()
    {
        foreach (var host in Hosts) host.KillAgent();
        _bed.Dispose();
    }

    [Theory]
    [InlineData("rolling")]
    [InlineData("blue-green")]
    public async Task A_deploy_moves_both_hosts_proxies_to_the_new_version_and_a_rollback_moves_them_back(string strategy)
    {
        var ports = Hosts.ToDictionary(h => h, _ => Cutover.Platform.LoopbackPort.Free());
        var config = _bed.NodeConfig(Hosts, ports, instances: 2, strategy: strategy, body: """
            fleet:
              batch: 1
              wait: 100ms
            health:
              interval: 200ms
            """, strategySection: strategy == "rolling" ? "rolling:\n  monitor: 200ms" : "blue_green:\n  monitor: 0s\n  keep_previous: 5m");
        var source = _bed.CopyNodeApp();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };

        foreach (var version in new[] { "1", "2" })
        {
            File.WriteAllText(Path.Combine(source, "VERSION"), version);
            var deploy = await _bed.Cli("deploy", source, "-c", config);
            Assert.True(deploy.ExitCode == 0, deploy.All);
            foreach (var host in Hosts)
            {
                for (var i = 0; i < 4; i++)
                    Assert.StartsWith($"hello from {version} ", await http.GetStringAsync($"http://127.0.0.1:{ports[host]}/"));
                Assert.True(File.Exists(Path.Combine(host.AgentHome, "agent.pid")), $"{host.Name} has no agent of its own");
            }
        }
        var rollback = await _bed.Cli("rollback", "-c", config);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        foreach (var host in Hosts)
            for (var i = 0; i < 4; i++)
                Assert.StartsWith("hello from 1 ", await http.GetStringAsync($"http://127.0.0.1:{ports[host]}/"));
        // The agents outlived the SSH sessions that started them, each in its own session (setsid).
        foreach (var host in Hosts)
            Assert.True(Cutover.Platform.LibC.Kill(int.Parse(File.ReadAllText(Path.Combine(host.AgentHome, "agent.pid"))), 0));
    }
}
