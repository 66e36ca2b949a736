using System.Globalization;
using System.Text.RegularExpressions;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// `cutover top` with hosts: the snapshot asks each host's `top --json`, the live screen reads one `top --stream --json`
/// per host over SSH; either way every host's agent has its row, with its rate, and its instances; `l` follows a host's logs.
/// </summary>
[Collection(SecondFleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetTopTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output, "top");
    private SshHost First => fleet.Hosts[0];
    private SshHost Second => fleet.Hosts[1];
    private IEnumerable<SshHost> Hosts => [First, Second];

    public void Dispose()
    {
        foreach (var host in Hosts) FleetBed.StopAgent(host, 15);
        _bed.KillLeftovers(Hosts);
        _bed.Dispose();
    }

    [Fact]
    public async Task Top_shows_every_host_s_agent_in_the_snapshot_and_live_over_one_stream_per_host()
    {
        var ports = Hosts.ToDictionary(h => h, _ => Cutover.Platform.LoopbackPort.Free());
        _bed.NodeConfig(Hosts, ports, instances: 1);
        var source = _bed.CopyNodeApp();
        File.WriteAllText(Path.Combine(source, "VERSION"), "1");
        var deploy = await _bed.Cli("deploy", source);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        await using var load = new LoadGenerator($"http://127.0.0.1:{ports[First]}/", connections: 2, TimeSpan.FromSeconds(90));

        var snapshot = await _bed.Cli("top");
        Assert.True(snapshot.ExitCode == 0, snapshot.All);
        Assert.DoesNotContain('\u001b', snapshot.Stdout);
        foreach (var host in Hosts)
            Assert.Matches($@"{Regex.Escape(host.Name)}\s+{_bed.App}-0\s+web\s+ready", snapshot.Stdout);
        var firstRow = Regex.Match(snapshot.Stdout, $@"{Regex.Escape(First.Name)}\s+{_bed.App}\s+\S+\s+\S+\s+1/1 ready\s+([0-9.]+)\s");
        Assert.True(firstRow.Success && double.Parse(firstRow.Groups[1].Value, CultureInfo.InvariantCulture) > 0, snapshot.Stdout);

        var exitFile = _bed.Dir.Combine("top.exit");
        using var terminal = new TmuxSession(_bed.Dir.Path, 170, 40, _bed.CliEnvironment(), $"dotnet exec '{CutoverCli.Dll}' top; echo $? > '{exitFile}'");
        var screen = "";
        var firstLive = new Regex($@"│ {Regex.Escape(First.Name)}\s+│ {_bed.App}\s+│[^│]+│[^│]+│\s*1/1 ready\s*│\s*(?<rate>[0-9.]+)\s*│");
        await Wait.UntilAsync(() =>
        {
            screen = terminal.Capture();
            return firstLive.Match(screen) is { Success: true } m && double.Parse(m.Groups["rate"].Value, CultureInfo.InvariantCulture) > 0
                   && screen.Contains($"│ {Second.Name} ") && screen.Contains($"instances of {_bed.App} on {First.Name}");
        }, TimeSpan.FromSeconds(30), "both hosts' rows, the first one's rate above 0 and its instances", TimeSpan.FromMilliseconds(250));
        terminal.SendKeys("Down");
        await Wait.UntilAsync(() => (screen = terminal.Capture()).Contains($"instances of {_bed.App} on {Second.Name}"), TimeSpan.FromSeconds(10),
            "the second host's instances after Down", TimeSpan.FromMilliseconds(100));
        Assert.Contains($"│ {_bed.App}-0 ", screen);
        // l: that host's logs, through `logs --remote --follow` on it; q back to the table, q again quits.
        terminal.SendKeys("l");
        await Wait.UntilAsync(() => (screen = terminal.Capture()).Contains($"logs of {_bed.App} on {Second.Name}") && screen.Contains("listening on"),
            TimeSpan.FromSeconds(15), "the second host's logs", TimeSpan.FromMilliseconds(100));
        terminal.SendKeys("q");
        await Wait.UntilAsync(() => terminal.Capture().Contains($"instances of {_bed.App} on {Second.Name}"), TimeSpan.FromSeconds(10), "the table again",
            TimeSpan.FromMilliseconds(100));
        terminal.SendKeys("q");
        await Wait.UntilAsync(() => File.Exists(exitFile) && File.ReadAllText(exitFile).Trim().Length > 0, TimeSpan.FromSeconds(15), "top to exit after q",
            TimeSpan.FromMilliseconds(100));
        Assert.Equal("0", File.ReadAllText(exitFile).Trim());
    }
}
