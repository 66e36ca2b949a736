using System.Diagnostics;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// Issue 12 over a real sshd host: a fleet deploy that installs a new Cutover version on a host hands that host's agent
/// over to the new build (`agent upgrade`, not a restart) before it stages and activates the release. The second build
/// is a second publish with another Version, so the host's agent really is of another version than the session.
/// </summary>
[Collection(SecondFleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetAgentUpgradeTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output, "node");
    private SshHost Host => fleet.Hosts[0];
    private string AgentPidFile => Path.Combine(Host.AgentHome, "agent.pid");

    public void Dispose()
    {
        if (File.Exists(AgentPidFile) && int.TryParse(File.ReadAllText(AgentPidFile), out var pid))
        {
            Cutover.Platform.LibC.Kill(pid, 15);
            Wait.Within(() => !Cutover.Platform.LibC.Kill(pid, 0), TimeSpan.FromSeconds(30));
            Cutover.Platform.LibC.Kill(pid, 9);
            File.Delete(AgentPidFile);
        }
        foreach (var orphan in OwnedProcesses.Mentioning(Host.Root)) Cutover.Platform.LibC.Kill(orphan, 9);
        _bed.Dispose();
    }

    [Fact]
    public async Task A_fleet_deploy_with_a_new_cutover_upgrades_the_hosts_agent_by_handover_before_activating_under_load()
    {
        using var newer = PublishedCutover.AsVersion("99.0.0-fleet-upgrade", published);
        var port = Cutover.Platform.LoopbackPort.Free();
        var config = _bed.NodeConfig([Host], new Dictionary<SshHost, int> { [Host] = port }, instances: 2, monitor: "200ms", body: """
            health:
              interval: 200ms
            """);
        var source = _bed.CopyNodeApp();

        File.WriteAllText(Path.Combine(source, "VERSION"), "1");
        var first = await _bed.Cli("deploy", source, "-c", config);
        output.WriteLine($"deploy 1 (build X): exit {first.ExitCode}\n{first.All}");
        Assert.True(first.ExitCode == 0, first.All);
        var oldAgent = int.Parse(File.ReadAllText(AgentPidFile));
        Assert.DoesNotContain("agent upgraded", first.All);
        await AssertInstalledBuildIsNativeWithItsJitHalfAsync(oldAgent, first.All);

        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 4, TimeSpan.FromMinutes(3));
        await Wait.UntilAsync(() => Task.FromResult(load.NowMs > 500), TimeSpan.FromSeconds(5), "load running");
        File.WriteAllText(Path.Combine(source, "VERSION"), "2");
        var clock = Stopwatch.StartNew();
        var second = await _bed.CliWith(_bed.CliEnvironment(newer.Binary), "deploy", source, "-c", config);
        output.WriteLine($"deploy 2 (build 99.0.0-fleet-upgrade): {clock.Elapsed.TotalSeconds:0.00}s exit {second.ExitCode}\n{second.All}");
        await Task.Delay(500);
        var samples = await load.StopAsync();
        Assert.True(second.ExitCode == 0, second.All);

        // The session ran the handover to its own (new) build before prepare; it waits until the old agent has left,
        // so everything after it (staging, the rolling activation) went to the new agent.
        Assert.Matches($@"agent upgraded: \S+ \(pid {oldAgent}\) -> 99\.0\.0-fleet-upgrade\S* \(pid \d+\)", second.All);
        var upgradedAt = second.All.IndexOf("agent upgraded:", StringComparison.Ordinal);
        var instancesAt = second.All.IndexOf("instances: started", StringComparison.Ordinal);
        Assert.True(upgradedAt >= 0 && instancesAt > upgradedAt, "the host's agent was not upgraded before the instances moved");
        var newAgent = int.Parse(File.ReadAllText(AgentPidFile));
        Assert.NotEqual(oldAgent, newAgent);
        Assert.False(Cutover.Platform.LibC.Kill(oldAgent, 0), $"the old agent {oldAgent} still runs");
        var agentLog = File.ReadAllText(Path.Combine(Host.AgentHome, "agent.log"));
        Assert.Matches(@"agent 99\.0\.0-fleet-upgrade\S* took over from agent", agentLog);

        var failed = samples.Where(s => s.Status != 200).ToList();
        output.WriteLine($"{samples.Count} requests against the host's proxy, {failed.Count} failed");
        Assert.True(samples.Count > 50, $"only {samples.Count} requests");
        Assert.True(failed.Count == 0, string.Join("\n", failed.Take(5).Select(f => $"{f.StartMs:0}ms {f.Status} {f.Error}")));
        Assert.Equal("2", samples[^1].Version);
    }

    /// <summary>
    /// Issue 14: the host got the fleet build (the app's link -> the native cutover, its jit/ half beside it), the agent
    /// runs from jit/, and `cutover status` on the host answers natively: the installed binary and the native binary alone,
    /// with no jit/ to hand over to, both report the release and the agent.
    /// </summary>
    private async Task AssertInstalledBuildIsNativeWithItsJitHalfAsync(int agent, string deployOutput)
    {
        var stateDir = Path.Combine(Host.Home, ".cutover", "apps", $"{_bed.App}@{Cutover.Fleet.HostAppState.RootKey(_bed.RootOf(Host))}");
        var installed = File.ResolveLinkTarget(Path.Combine(stateDir, "cutover"), returnFinalTarget: true)!.FullName;
        Assert.Contains($"cutover {Path.GetFileName(Path.GetDirectoryName(installed))}", deployOutput); // the version the install phase named
        Assert.True(File.ReadAllBytes(published.Binary).AsSpan().SequenceEqual(File.ReadAllBytes(installed)), $"{installed} is not the published native cutover");
        var jit = Path.Combine(Path.GetDirectoryName(installed)!, "jit", "cutover");
        Assert.Equal(new FileInfo(published.Jit).Length, new FileInfo(jit).Length);
        Assert.Equal(jit, File.ResolveLinkTarget($"/proc/{agent}/exe", returnFinalTarget: false)!.FullName);

        using var alone = new TempDir("cutover-native-alone-");
        File.Copy(installed, alone.Combine("cutover"));
        File.SetUnixFileMode(alone.Combine("cutover"), File.GetUnixFileMode(installed));
        var environment = new Dictionary<string, string> { ["HOME"] = Host.Home, ["CUTOVER_HOME"] = Host.AgentHome, ["CUTOVER_METRICS_LISTEN"] = "off" };
        var current = Path.GetFileName(File.ResolveLinkTarget(Path.Combine(_bed.RootOf(Host), "current"), returnFinalTarget: false)!.FullName);
        foreach (var binary in new[] { installed, alone.Combine("cutover") })
        {
            var status = await CutoverCli.RunPublishedAsync(binary, stateDir, environment, "status", "-c", Path.Combine(stateDir, "cutover.yml"));
            output.WriteLine($"$ {binary} status\n{status.All}");
            Assert.True(status.ExitCode == 0, status.All);
            Assert.Contains($"current      {current}", status.Stdout);
            Assert.Contains($"(pid {agent})", status.Stdout);
        }
    }
}
