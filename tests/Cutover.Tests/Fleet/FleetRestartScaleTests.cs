using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>`cutover restart` and `cutover scale` with hosts: each selected host's agent does it, --hosts/--roles narrow it.</summary>
[Collection(SecondFleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetRestartScaleTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output, "rs");
    private SshHost Web => fleet.Hosts[0];
    private SshHost Jobs => fleet.Hosts[1];
    private IEnumerable<SshHost> Hosts => [Web, Jobs];
    private string Source => _bed.Source;

    public void Dispose()
    {
        foreach (var host in Hosts) host.KillAgent();
        _bed.KillLeftovers(Hosts);
        _bed.Dispose();
    }

    /// <summary>The app's instance pids as the host's agent recorded them.</summary>
    private List<int> PidsOn(SshHost host)
    {
        var state = JsonDocument.Parse(File.ReadAllText(Path.Combine(host.AgentHome, "state.json"))).RootElement;
        var app = state.GetProperty("apps").EnumerateArray().Single(a => a.GetProperty("app").GetString() == _bed.App);
        return app.GetProperty("instances").EnumerateArray().Select(i => i.GetProperty("pid").GetInt32()).Order().ToList();
    }

    [Fact]
    public async Task Restart_and_scale_run_on_the_selected_hosts_only()
    {
        var ports = Hosts.ToDictionary(h => h, _ => Cutover.Platform.LoopbackPort.Free());
        var config = _bed.NodeConfig(Hosts, ports, instances: 2);
        _bed.CopyNodeApp();
        File.WriteAllText(Path.Combine(Source, "VERSION"), "1");
        var deploy = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        var web = PidsOn(Web);
        var jobs = PidsOn(Jobs);

        var restart = await _bed.Cli("restart", "--hosts", Jobs.Name, "-c", config);
        Assert.True(restart.ExitCode == 0, restart.All);
        Assert.Contains($"restart: {_bed.App} on 1 hosts", restart.Stdout);
        Assert.Equal(web, PidsOn(Web));
        Assert.Empty(PidsOn(Jobs).Intersect(jobs));

        var scale = await _bed.Cli("scale", "web=3", "--hosts", Web.Name, "--json", "-c", config);
        Assert.True(scale.ExitCode == 0, scale.All);
        var result = JsonDocument.Parse(scale.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal("live", result.GetProperty("outcome").GetString());
        Assert.Equal(Web.Name, Assert.Single(result.GetProperty("hosts").EnumerateArray()).GetProperty("host").GetString());
        Assert.Equal(3, PidsOn(Web).Count);
        Assert.Equal(2, PidsOn(Jobs).Count);

        var unknown = await _bed.Cli("restart", "--hosts", "nosuchhost", "-c", config);
        Assert.Equal(2, unknown.ExitCode);
    }
}
