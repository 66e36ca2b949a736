using System.Diagnostics;
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
    private readonly TempDir _dir = new();
    private readonly string _app = "node" + Guid.NewGuid().ToString("N")[..8];
    private IEnumerable<SshHost> Hosts => fleet.Hosts.Take(2);

    public void Dispose()
    {
        foreach (var host in Hosts) host.KillAgent();
        _dir.Dispose();
    }

    [Theory]
    [InlineData("rolling")]
    [InlineData("blue-green")]
    public async Task A_deploy_moves_both_hosts_proxies_to_the_new_version_and_a_rollback_moves_them_back(string strategy)
    {
        var ports = Hosts.ToDictionary(h => h, _ => Cutover.Platform.LoopbackPort.Free());
        var config = _dir.Combine("cutover.yml");
        File.WriteAllText(config, $"""
            app: {_app}
            strategy: {strategy}
            root: /srv/{_app}
            {FleetDeployTests.HostsYaml(Hosts, h => Path.Combine(h.Root, _app), h => $", proxy_listen: 127.0.0.1:{ports[h]}")}
            ssh:
              key: {fleet.ClientKey}
              known_hosts: {fleet.KnownHosts}
            fleet:
              batch: 1
              wait: 100ms
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 10s
            proxy:
              listen: 127.0.0.1:1
              drain_timeout: 2s
            health:
              interval: 200ms
            {(strategy == "rolling" ? "rolling:\n  monitor: 200ms" : "blue_green:\n  monitor: 0s\n  keep_previous: 5m")}
            """.Replace("\n\n", "\n"));
        var source = _dir.Combine("src");
        AppFactory.CopyTree(Path.Combine(AppContext.BaseDirectory, "examples", "node-app"), source);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };

        foreach (var version in new[] { "1", "2" })
        {
            File.WriteAllText(Path.Combine(source, "VERSION"), version);
            var clock = Stopwatch.StartNew();
            var deploy = await CutoverCli.RunAsync(_dir.Path, new Dictionary<string, string> { ["CUTOVER_SELF_CONTAINED"] = published.Binary }, "deploy", source, "-c", config);
            output.WriteLine($"deploy {version}: {clock.Elapsed.TotalSeconds:0.00}s exit {deploy.ExitCode}\n{deploy.All}");
            Assert.True(deploy.ExitCode == 0, deploy.All);
            foreach (var host in Hosts)
            {
                for (var i = 0; i < 4; i++)
                    Assert.StartsWith($"hello from {version} ", await http.GetStringAsync($"http://127.0.0.1:{ports[host]}/"));
                Assert.True(File.Exists(Path.Combine(host.AgentHome, "agent.pid")), $"{host.Name} has no agent of its own");
            }
        }
        var rollback = await CutoverCli.RunAsync(_dir.Path, new Dictionary<string, string> { ["CUTOVER_SELF_CONTAINED"] = published.Binary }, "rollback", "-c", config);
        output.WriteLine($"rollback: exit {rollback.ExitCode}\n{rollback.All}");
        Assert.True(rollback.ExitCode == 0, rollback.All);
        foreach (var host in Hosts)
            for (var i = 0; i < 4; i++)
                Assert.StartsWith("hello from 1 ", await http.GetStringAsync($"http://127.0.0.1:{ports[host]}/"));
        // The agents outlived the SSH sessions that started them, each in its own session (setsid).
        foreach (var host in Hosts)
            Assert.True(Cutover.Platform.LibC.Kill(int.Parse(File.ReadAllText(Path.Combine(host.AgentHome, "agent.pid"))), 0));
    }
}
