using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// `cutover top` with hosts: the snapshot asks each host's `top --json`, the live screen reads one `top --stream --json`
/// per host over SSH; either way every host's agent has its row, with its rate, and its instances; `l` follows a host's logs.
/// </summary>
[Collection(FleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetTopTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _app = "top" + Guid.NewGuid().ToString("N")[..8];
    private SshHost First => fleet.Hosts[0];
    private SshHost Second => fleet.Hosts[1];
    private IEnumerable<SshHost> Hosts => [First, Second];
    private string RootOf(SshHost host) => Path.Combine(host.Root, _app);
    private Dictionary<string, string> Environment => new() { ["CUTOVER_SELF_CONTAINED"] = published.Binary };

    public void Dispose()
    {
        foreach (var host in Hosts)
        {
            var pidFile = Path.Combine(host.AgentHome, "agent.pid");
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile), out var pid))
            {
                Cutover.Platform.LibC.Kill(pid, 15);
                Wait.Within(() => !Cutover.Platform.LibC.Kill(pid, 0), TimeSpan.FromSeconds(30));
                Cutover.Platform.LibC.Kill(pid, 9);
                File.Delete(pidFile);
            }
            foreach (var owned in OwnedProcesses.Mentioning(RootOf(host))) Cutover.Platform.LibC.Kill(owned, 9);
        }
        _dir.Dispose();
    }

    private async Task<CliResult> Cli(params string[] args)
    {
        var clock = Stopwatch.StartNew();
        var result = await CutoverCli.RunAsync(_dir.Path, Environment, args);
        output.WriteLine($"$ cutover {string.Join(' ', args)}  ({clock.Elapsed.TotalSeconds:0.00}s, exit {result.ExitCode})\n{result.Stdout}{result.Stderr}");
        return result;
    }

    [Fact]
    public async Task Top_shows_every_host_s_agent_in_the_snapshot_and_live_over_one_stream_per_host()
    {
        var ports = Hosts.ToDictionary(h => h, _ => Cutover.Platform.LoopbackPort.Free());
        File.WriteAllText(_dir.Combine("cutover.yml"), $"""
            app: {_app}
            strategy: rolling
            root: /srv/{_app}
            {FleetDeployTests.HostsYaml(Hosts, RootOf, h => $", proxy_listen: 127.0.0.1:{ports[h]}")}
            ssh:
              key: {fleet.ClientKey}
              known_hosts: {fleet.KnownHosts}
            run:
              command: node server.js
              instances: 1
              ready: message
              ready_timeout: 10s
            proxy:
              listen: 127.0.0.1:1
              drain_timeout: 2s
            rolling:
              monitor: 0s
            """.Replace("\n\n", "\n"));
        var source = _dir.Combine("src");
        AppFactory.CopyTree(Path.Combine(AppContext.BaseDirectory, "examples", "node-app"), source);
        File.WriteAllText(Path.Combine(source, "VERSION"), "1");
        var deploy = await Cli("deploy", source);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        await using var load = new LoadGenerator($"http://127.0.0.1:{ports[First]}/", connections: 2, TimeSpan.FromSeconds(90));

        var snapshot = await Cli("top");
        Assert.True(snapshot.ExitCode == 0, snapshot.All);
        Assert.DoesNotContain('\u001b', snapshot.Stdout);
        foreach (var host in Hosts)
            Assert.Matches($@"{Regex.Escape(host.Name)}\s+{_app}-0\s+web\s+ready", snapshot.Stdout);
        var firstRow = Regex.Match(snapshot.Stdout, $@"{Regex.Escape(First.Name)}\s+{_app}\s+\S+\s+\S+\s+1/1 ready\s+([0-9.]+)\s");
        Assert.True(firstRow.Success && double.Parse(firstRow.Groups[1].Value, CultureInfo.InvariantCulture) > 0, snapshot.Stdout);

        var exitFile = _dir.Combine("top.exit");
        using var terminal = new TmuxSession(_dir.Path, 170, 40, Environment, $"dotnet exec '{CutoverCli.Dll}' top; echo $? > '{exitFile}'");
        var screen = "";
        var firstLive = new Regex($@"│ {Regex.Escape(First.Name)}\s+│ {_app}\s+│[^│]+│[^│]+│\s*1/1 ready\s*│\s*(?<rate>[0-9.]+)\s*│");
        await Wait.UntilAsync(() =>
        {
            screen = terminal.Capture();
            return firstLive.Match(screen) is { Success: true } m && double.Parse(m.Groups["rate"].Value, CultureInfo.InvariantCulture) > 0
                   && screen.Contains($"│ {Second.Name} ") && screen.Contains($"instances of {_app} on {First.Name}");
        }, TimeSpan.FromSeconds(30), "both hosts' rows, the first one's rate above 0 and its instances", TimeSpan.FromMilliseconds(250));
        terminal.SendKeys("Down");
        await Wait.UntilAsync(() => (screen = terminal.Capture()).Contains($"instances of {_app} on {Second.Name}"), TimeSpan.FromSeconds(10),
            "the second host's instances after Down", TimeSpan.FromMilliseconds(100));
        Assert.Contains($"│ {_app}-0 ", screen);
        // l: that host's logs, through `logs --remote --follow` on it; q back to the table, q again quits.
        terminal.SendKeys("l");
        await Wait.UntilAsync(() => (screen = terminal.Capture()).Contains($"logs of {_app} on {Second.Name}") && screen.Contains("listening on"),
            TimeSpan.FromSeconds(15), "the second host's logs", TimeSpan.FromMilliseconds(100));
        terminal.SendKeys("q");
        await Wait.UntilAsync(() => terminal.Capture().Contains($"instances of {_app} on {Second.Name}"), TimeSpan.FromSeconds(10), "the table again",
            TimeSpan.FromMilliseconds(100));
        terminal.SendKeys("q");
        await Wait.UntilAsync(() => File.Exists(exitFile) && File.ReadAllText(exitFile).Trim().Length > 0, TimeSpan.FromSeconds(15), "top to exit after q",
            TimeSpan.FromMilliseconds(100));
        Assert.Equal("0", File.ReadAllText(exitFile).Trim());
    }
}
