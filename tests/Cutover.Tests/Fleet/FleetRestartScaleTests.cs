using System.Diagnostics;
using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>`cutover restart` and `cutover scale` with hosts: each selected host's agent does it, --hosts/--roles narrow it.</summary>
[Collection(FleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetRestartScaleTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _app = "rs" + Guid.NewGuid().ToString("N")[..8];
    private SshHost Web => fleet.Hosts[0];
    private SshHost Jobs => fleet.Hosts[1];
    private IEnumerable<SshHost> Hosts => [Web, Jobs];
    private string RootOf(SshHost host) => Path.Combine(host.Root, _app);
    private string Source => _dir.Combine("src");

    public void Dispose()
    {
        foreach (var host in Hosts)
        {
            host.KillAgent();
            foreach (var owned in OwnedProcesses.Mentioning(RootOf(host))) Cutover.Platform.LibC.Kill(owned, 9);
        }
        _dir.Dispose();
    }

    private async Task<CliResult> Cli(params string[] args)
    {
        var clock = Stopwatch.StartNew();
        var result = await CutoverCli.RunAsync(_dir.Path, new Dictionary<string, string> { ["CUTOVER_SELF_CONTAINED"] = published.Binary }, args);
        output.WriteLine($"$ cutover {string.Join(' ', args)}  ({clock.Elapsed.TotalSeconds:0.00}s, exit {result.ExitCode})\n{result.Stdout}{result.Stderr}");
        return result;
    }

    /// <summary>The app's instance pids as the host's agent recorded them.</summary>
    private List<int> PidsOn(SshHost host)
    {
        var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(host.AgentHome, "state.json"))).RootElement;
        var app = state.GetProperty("apps").EnumerateArray().Single(a => a.GetProperty("app").GetString() == _app);
        return app.GetProperty("instances").EnumerateArray().Select(i => i.GetProperty("pid").GetInt32()).Order().ToList();
    }

    [Fact]
    public async Task Restart_and_scale_run_on_the_selected_hosts_only()
    {
        var ports = Hosts.ToDictionary(h => h, _ => Cutover.Platform.LoopbackPort.Free());
        var config = _dir.Combine("cutover.yml");
        File.WriteAllText(config, $"""
            app: {_app}
            strategy: rolling
            root: /srv/{_app}
            {FleetDeployTests.HostsYaml(Hosts, RootOf, h => $", proxy_listen: 127.0.0.1:{ports[h]}")}
            ssh:
              key: {fleet.ClientKey}
              known_hosts: {fleet.KnownHosts}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 10s
            proxy:
              listen: 127.0.0.1:1
              drain_timeout: 2s
            rolling:
              monitor: 0s
            """.Replace("\n\n", "\n"));
        AppFactory.CopyTree(Path.Combine(AppContext.BaseDirectory, "examples", "node-app"), Source);
        File.WriteAllText(Path.Combine(Source, "VERSION"), "1");
        var deploy = await Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        var web = PidsOn(Web);
        var jobs = PidsOn(Jobs);

        var restart = await Cli("restart", "--hosts", Jobs.Name, "-c", config);
        Assert.True(restart.ExitCode == 0, restart.All);
        Assert.Contains($"restart: {_app} on 1 hosts", restart.Stdout);
        Assert.Equal(web, PidsOn(Web));
        Assert.Empty(PidsOn(Jobs).Intersect(jobs));

        var scale = await Cli("scale", "web=3", "--hosts", Web.Name, "--json", "-c", config);
        Assert.True(scale.ExitCode == 0, scale.All);
        var result = JsonDocument.Parse(scale.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal("live", result.GetProperty("outcome").GetString());
        Assert.Equal(Web.Name, Assert.Single(result.GetProperty("hosts").EnumerateArray()).GetProperty("host").GetString());
        Assert.Equal(3, PidsOn(Web).Count);
        Assert.Equal(2, PidsOn(Jobs).Count);

        var unknown = await Cli("restart", "--hosts", "nosuchhost", "-c", config);
        Assert.Equal(2, unknown.ExitCode);
    }
}
