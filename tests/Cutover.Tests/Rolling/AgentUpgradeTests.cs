using System.Diagnostics;
using System.Text.Json;
using Cutover.Platform;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// What the upgrade tests share: the two apps, a new binary, and the questions they ask the agent and /proc.
/// </summary>
public abstract class AgentUpgradeBed(ITestOutputHelper output) : IDisposable
{
    protected ITestOutputHelper Output { get; } = output;
    protected readonly AgentBed _bed = new();
    protected readonly int _webPort = HealthServer.FreePort();
    protected readonly int _bgPort = HealthServer.FreePort();
    /// <summary>More environment for every command (and so for the agent a deploy starts): a test's knobs.</summary>
    protected readonly Dictionary<string, string> _environment = new();

    public void Dispose() => _bed.Dispose();

    protected Task<CliResult> Cli(params string[] args) =>
        CutoverCli.RunAsync(_bed.Path, new Dictionary<string, string>(_environment) { ["CUTOVER_HOME"] = _bed.Home }, args);

    protected string AgentLog => Path.Combine(_bed.Home, "agent.log");

    /// <summary>How many lines of agent.log (both agents write it) contain <paramref name="text"/>.</summary>
    protected int LogLines(string text) => File.Exists(AgentLog) ? File.ReadLines(AgentLog).Count(l => l.Contains(text, StringComparison.Ordinal)) : 0;

    protected string WebConfig => _bed.Combine("web.yml");
    protected string BgConfig => _bed.Combine("bg.yml");

    /// <summary>Both apps deployed: web (rolling, release 1) and bg (blue-green, 1 then 2, so release 1 is warm).</summary>
    protected async Task DeployBothAsync(bool blueGreen = true, string webDrain = "10s")
    {
        File.WriteAllText(WebConfig, $"""
            app: web
            strategy: rolling
            root: {_bed.Combine("root-web")}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 10s
            proxy:
              listen: 127.0.0.1:{_webPort}
              drain_timeout: {webDrain}
            health:
              interval: 300ms
            processes:
              worker:
                command: node -e "setInterval(() => console.log('worker tick'), 500)"
                instances: 1
                ready: none
            """);
        File.WriteAllText(BgConfig, $"""
            app: bg
            strategy: blue-green
            root: {_bed.Combine("root-bg")}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 10s
            proxy:
              listen: 127.0.0.1:{_bgPort}
              drain_timeout: 10s
            health:
              interval: 300ms
            blue_green:
              keep_previous: 10m
            """);
        _bed.WriteVersion("1");
        await Ok(Cli("deploy", _bed.Source, "-c", WebConfig));
        if (!blueGreen) return;
        await Ok(Cli("deploy", _bed.Source, "-c", BgConfig));
        _bed.WriteVersion("2");
        await Ok(Cli("deploy", _bed.Source, "-c", BgConfig));
    }

    protected async Task<CliResult> Ok(Task<CliResult> command)
    {
        var result = await command;
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.All}");
        return result;
    }

    /// <summary>A copy of this build and a script that runs it as version <paramref name="version"/> (with more environment if given).</summary>
    protected string NewBinary(string version, string extraEnvironment = "")
    {
        var copy = _bed.Combine("build-copy");
        if (!Directory.Exists(copy)) AppFactory.CopyTree(AppContext.BaseDirectory, copy);
        var script = _bed.Combine($"cutover-{version}");
        File.WriteAllText(script, $"#!/bin/sh\nCUTOVER_VERSION_OVERRIDE={version} {extraEnvironment} exec dotnet exec {copy}/cutover.dll \"$@\"\n");
        File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
        return script;
    }

    /// <summary>Running, not a zombie (an agent's parent after `setsid -f` may be an init that does not reap).</summary>
    protected static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    protected int AgentPid => int.Parse(File.ReadAllText(Path.Combine(_bed.Home, "agent.pid")));

    /// <summary>
    /// What the agent says about an app (GET /v1/apps, what `status` renders), asked on the control socket directly: a
    /// CLI start per question made these tests slow. A fresh client each time, so no kept-alive connection reaches an
    /// agent that has just handed over.
    /// </summary>
    protected async Task<Cutover.Agent.AppView> AppAsync(string config)
    {
        using var client = new Cutover.Agent.AgentClient(new Cutover.Agent.AgentHome(_bed.Home));
        var app = config == WebConfig ? "web" : "bg";
        return (await client.AppsAsync(CancellationToken.None)).Single(a => a.App == app);
    }

    /// <summary>The instances the agent runs for an app: id -> (pid, state, restarts, uptime).</summary>
    protected async Task<Dictionary<string, (int Pid, string State, int Restarts, double Uptime)>> InstancesAsync(string config) =>
        (await AppAsync(config)).Instances.ToDictionary(i => i.Id, i => (i.Pid ?? 0, i.State, i.Restarts, i.UptimeSeconds ?? 0));

    /// <summary>Who answers on agent.sock, or null when nothing does.</summary>
    protected async Task<Cutover.Agent.AgentInfo?> AnsweringAgentAsync()
    {
        using var client = new Cutover.Agent.AgentClient(new Cutover.Agent.AgentHome(_bed.Home));
        try
        {
            return await client.InfoAsync(CancellationToken.None);
        }
        catch (HttpRequestException)
        {
            return null;
        }
    }

    /// <summary>Process group leaders started for this home and app (the instance processes, whoever supervises them).</summary>
    protected int[] InstanceProcesses(string app) =>
        ProcStat.AllPids().Where(pid =>
        {
            if (ProcStat.Read(pid)?.ProcessGroup != pid) return false;
            try
            {
                var environ = File.ReadAllText($"/proc/{pid}/environ").Split('\0');
                return environ.Contains($"CUTOVER_AGENT_HOME={_bed.Home}") && environ.Contains($"CUTOVER_APP={app}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        }).ToArray();

    protected static void AssertNoFailure(IReadOnlyList<Sample> samples, string what)
    {
        var failed = samples.Where(s => s.Status != 200).ToList();
        Assert.True(failed.Count == 0, $"{what}: {failed.Count} of {samples.Count} requests failed: " +
            string.Join("; ", failed.Take(5).Select(f => $"{f.Status} {f.Error}")));
    }

    /// <summary>The agent processes of this home that are running (the old, the new, or a restarted one).</summary>
    protected int[] AgentProcesses() =>
        ProcStat.AllPids().Where(pid =>
        {
            try
            {
                var commandLine = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
                var environ = File.ReadAllText($"/proc/{pid}/environ").Split('\0');
                return Alive(pid) && commandLine.Contains("agent") && commandLine.Any(a => a.EndsWith("cutover.dll", StringComparison.Ordinal))
                       && environ.Contains($"CUTOVER_HOME={_bed.Home}");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
        }).ToArray();

    /// <summary>The agent an upgrade started (not <paramref name="serving"/>, which may itself have been such a new agent).</summary>
    protected int? TakingOverAgent(int serving) =>
        AgentProcesses().Cast<int?>().FirstOrDefault(pid => pid != serving && File.ReadAllText($"/proc/{pid}/cmdline").Contains("--take-over"));
}

/// <summary>
/// Issue 12: `cutover agent upgrade`, end to end through the real CLI and real agents. Two apps run under the agent
/// (one rolling with 2 instances, one blue-green with a warm previous set), under continuous keep-alive load. The
/// "new binary" is another copy of this build run through a script that sets CUTOVER_VERSION_OVERRIDE, so the two
/// agents report different versions without a second compilation.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public sealed class AgentUpgradeTests(ITestOutputHelper output) : AgentUpgradeBed(output)
{
    /// <summary>
    /// systemd's side of the README's unit (Type=notify, NotifyAccess=all, ExecReload=cutover agent upgrade), on the wire:
    /// systemd is a Unix datagram socket named by NOTIFY_SOCKET, and this test is that socket. The agent says MAINPID=
    /// itself with READY=1 once it serves; an upgrade says RELOADING=1 (old agent), then MAINPID=new with READY=1 (new
    /// agent, before the old one leaves, so systemd never sees its main pid die); a refused one says READY=1 again.
    /// </summary>
    [Fact]
    public async Task Under_systemd_the_agent_says_MAINPID_READY_and_an_upgrade_says_RELOADING_then_the_new_MAINPID_with_READY()
    {
        var socketPath = _bed.Combine("notify.sock");
        using var systemd = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Unspecified);
        systemd.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(socketPath));
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        async Task<string> NextAsync()
        {
            var buffer = new byte[4096];
            var length = await systemd.ReceiveAsync(buffer, System.Net.Sockets.SocketFlags.None, timeout.Token);
            var datagram = System.Text.Encoding.UTF8.GetString(buffer, 0, length);
            Output.WriteLine($"notify: {datagram.ReplaceLineEndings(" | ")}");
            return datagram;
        }

        var start = _bed.StartInfo("agent", "--quiet");
        start.Environment["NOTIFY_SOCKET"] = socketPath;
        using var agent = CutoverCli.Start(start, line => Output.WriteLine($"agent: {line}"));
        Assert.Equal($"MAINPID={agent.Id}\nREADY=1\n", await NextAsync());
        Assert.Equal(agent.Id, AgentPid);
        await DeployBothAsync(blueGreen: false);
        var before = await InstancesAsync(WebConfig);

        await using var load = new LoadGenerator($"http://127.0.0.1:{_webPort}/", connections: 4, maxDuration: TimeSpan.FromMinutes(2));
        await Wait.UntilAsync(() => load.NowMs > 500, TimeSpan.FromSeconds(5), "load running");

        // A binary that exits at once: refused, and the old agent tells systemd the reload is over and it serves on.
        var broken = _bed.Combine("cutover-broken");
        File.WriteAllText(broken, "#!/bin/sh\nexit 1\n");
        File.SetUnixFileMode(broken, (UnixFileMode)0b111_101_101);
        var refused = await Cli("agent", "upgrade", "--binary", broken);
        Assert.Equal(1, refused.ExitCode);
        Assert.StartsWith("RELOADING=1\nMONOTONIC_USEC=", await NextAsync());
        Assert.Equal("READY=1\n", await NextAsync());
        Assert.Equal(agent.Id, AgentPid);

        await Ok(Cli("agent", "upgrade", "--binary", NewBinary("9.0.1-test")));
        var reloading = await NextAsync();
        Assert.Matches(@"^RELOADING=1\nMONOTONIC_USEC=\d+\n$", reloading);
        var newAgent = AgentPid;
        Assert.NotEqual(agent.Id, newAgent);
        Assert.Equal($"MAINPID={newAgent}\nREADY=1\n", await NextAsync());
        Assert.True(agent.WaitForExit(TimeSpan.FromSeconds(30)), $"the old agent {agent.Id} did not leave");
        Assert.Equal(0, agent.ExitCode); // left cleanly (systemd would mark a crash of the leaving agent in the journal)
        Assert.True(Alive(newAgent));

        var samples = await load.StopAsync();
        AssertNoFailure(samples, "web");
        Assert.Equal(before.Values.Select(v => v.Pid).Order(), (await InstancesAsync(WebConfig)).Values.Select(v => v.Pid).Order());
        // Nothing else was said (no STOPPING=1 from the old agent, which would tell systemd the service is going down).
        systemd.Blocking = false;
        Assert.Throws<System.Net.Sockets.SocketException>(() => systemd.Receive(new byte[4096]));
    }

    [Fact]
    public async Task Three_upgrades_in_a_row_under_load_fail_no_request_keep_every_pid_and_the_new_agent_supervises_and_deploy_knows_the_agents_version()
    {
        await DeployBothAsync();
        var webBefore = await InstancesAsync(WebConfig);
        var bgBefore = await InstancesAsync(BgConfig);
        var warmBefore = InstanceProcesses("bg").Except(bgBefore.Values.Select(v => v.Pid)).Order().ToArray();
        Assert.Equal(2, warmBefore.Length);
        var firstAgent = AgentPid;

        await using var webLoad = new LoadGenerator($"http://127.0.0.1:{_webPort}/", connections: 6, maxDuration: TimeSpan.FromMinutes(4));
        await using var bgLoad = new LoadGenerator($"http://127.0.0.1:{_bgPort}/", connections: 6, maxDuration: TimeSpan.FromMinutes(4));
        await Wait.UntilAsync(() => webLoad.NowMs > 500, TimeSpan.FromSeconds(5), "load running");
        using var slowClient = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var slow = slowClient.GetStringAsync($"http://127.0.0.1:{_webPort}/slow");
        await Task.Delay(300);

        var agents = new List<int> { firstAgent };
        foreach (var version in new[] { "9.0.1-test", "9.0.2-test", "9.0.3-test" })
        {
            var clock = Stopwatch.StartNew();
            var upgrade = await Ok(Cli("agent", "upgrade", "--binary", NewBinary(version)));
            Output.WriteLine($"upgrade to {version} in {clock.ElapsedMilliseconds} ms: {upgrade.Stdout.Trim()}");
            Assert.Contains($"-> {version} (pid {AgentPid})", upgrade.Stdout);
            Assert.False(Alive(agents[^1]), "the old agent is still running after the upgrade returned");
            agents.Add(AgentPid);
            Assert.Contains($"agent {version} (pid {AgentPid}), running since", (await Ok(Cli("agent", "--version"))).Stdout);
        }
        Assert.StartsWith("hello from 1 (slow", await slow); // started before the first upgrade, answered through the old agent
        await Task.Delay(500);
        var samples = await webLoad.StopAsync();
        var bgSamples = await bgLoad.StopAsync();
        Output.WriteLine($"web: {samples.Count} requests, bg: {bgSamples.Count} requests across three upgrades (agents {string.Join(" -> ", agents)})");
        AssertNoFailure(samples, "web");
        AssertNoFailure(bgSamples, "bg");
        Assert.Equal(4, agents.Distinct().Count());

        // Same processes, now the third new agent's, with their original uptime and counters.
        var webAfter = await InstancesAsync(WebConfig);
        var bgAfter = await InstancesAsync(BgConfig);
        Assert.Equal(webBefore.ToDictionary(i => i.Key, i => i.Value.Pid), webAfter.ToDictionary(i => i.Key, i => i.Value.Pid));
        Assert.Equal(bgBefore.ToDictionary(i => i.Key, i => i.Value.Pid), bgAfter.ToDictionary(i => i.Key, i => i.Value.Pid));
        Assert.All(webAfter.Values.Concat(bgAfter.Values), i => Assert.Equal("ready", i.State));
        Assert.All(webAfter, i => Assert.True(i.Value.Uptime >= webBefore[i.Key].Uptime, $"{i.Key}: uptime restarted"));
        Assert.Equal(warmBefore, InstanceProcesses("bg").Except(bgAfter.Values.Select(v => v.Pid)).Order().ToArray());
        var status = await Ok(Cli("status", "-c", BgConfig));
        Assert.Contains("previous set: release", status.Stdout);
        Assert.Contains("9.0.3-test", status.Stdout);

        // The warm set is still a switch: a rollback starts no process.
        var rollback = await Ok(Cli("rollback", "-c", BgConfig));
        Assert.Equal(warmBefore, (await InstancesAsync(BgConfig)).Values.Select(v => v.Pid).Order().ToArray());
        using var http = new HttpClient();
        Assert.StartsWith("hello from 1", await http.GetStringAsync($"http://127.0.0.1:{_bgPort}/"));
        Output.WriteLine(rollback.Stdout);

        // Supervised by the new agent: a killed instance is restarted, and its output reaches the log.
        var victim = webAfter["web-0"].Pid;
        LibC.Kill(victim, 9);
        await Wait.UntilAsync(async () => (await InstancesAsync(WebConfig))["web-0"] is { State: "ready" } i && i.Pid != victim, TimeSpan.FromSeconds(30), "web-0 restarted by the new agent");
        Assert.Equal(1, (await InstancesAsync(WebConfig))["web-0"].Restarts);
        Assert.Equal(3, InstanceProcesses("web").Length); // two web instances and the worker
        Assert.Equal(webBefore["web-worker-0"].Pid, (await InstancesAsync(WebConfig))["web-worker-0"].Pid);
        // The worker's output still reaches the log through the third new agent.
        await Wait.UntilAsync(async () => (await Cli("logs", "-c", WebConfig, "--process", "worker", "--since", "2s")).Stdout.Contains("worker tick"),
            TimeSpan.FromSeconds(10), "a fresh worker line in the log");
        var logs = await Ok(Cli("logs", "-c", WebConfig, "-n", "400"));
        Assert.Contains("handed over to the new agent", logs.Stdout);
        Assert.Contains($"adopted pid {webBefore["web-1"].Pid}", logs.Stdout);

        // `agent --version` and `status` show the running agent (the third new one); a deploy warns that it runs
        // another version and names the command, and --upgrade-agent upgrades it (to this CLI's build) first.
        var versions = await Ok(Cli("agent", "--version"));
        Assert.Matches(@"^cutover \S+\nagent 9\.0\.3-test \(pid \d+\), running since \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ \(up \d+", versions.Stdout);
        using (var statusJson = JsonDocument.Parse((await Ok(Cli("status", "--json", "-c", WebConfig))).Stdout))
        {
            var agent = statusJson.RootElement.GetProperty("agent_process");
            Assert.Equal(AgentPid, agent.GetProperty("pid").GetInt32());
            Assert.Equal("9.0.3-test", agent.GetProperty("version").GetString());
            Assert.InRange(agent.GetProperty("since").GetDateTimeOffset(), DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow);
        }
        _bed.WriteVersion("3");
        var warned = await Ok(Cli("deploy", _bed.Source, "-c", WebConfig));
        Assert.Contains("the agent runs cutover 9.0.3-test", warned.All);
        Assert.Contains("cutover agent upgrade", warned.All);
        var oldAgent = AgentPid;
        _bed.WriteVersion("4");
        var upgraded = await Ok(Cli("deploy", _bed.Source, "-c", WebConfig, "--upgrade-agent"));
        Assert.Contains("agent upgraded: 9.0.3-test", upgraded.All);
        Assert.NotEqual(oldAgent, AgentPid);
        Assert.DoesNotContain("the agent runs cutover", upgraded.All);
        Assert.StartsWith("hello from 4", await http.GetStringAsync($"http://127.0.0.1:{_webPort}/"));
        Assert.DoesNotContain("9.0.3-test", (await Ok(Cli("agent", "--version"))).Stdout);
    }


    /// <summary>
    /// Long connections held by the leaving agent stay up to drain_timeout, however long: the listeners' host shutdown
    /// timeout (30 s by default) no longer caps it. Proven cheaply: the agents run with that timeout at 1 s (the host's
    /// own setting, shutdownTimeoutSeconds) and the app's drain_timeout is 3 s; the WebSocket must stay up ~3 s after
    /// the old agent began to leave, not 1 s.
    /// </summary>
    [Fact]
    public async Task A_websocket_held_by_the_old_agent_stays_open_until_drain_timeout_even_above_the_hosts_shutdown_timeout_and_the_upgrade_ends_when_it_leaves()
    {
        _environment["shutdownTimeoutSeconds"] = "1";
        await DeployBothAsync(blueGreen: false, webDrain: "3s");
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{_webPort}/socket"), CancellationToken.None);
        var closed = Task.Run(async () =>
        {
            try { await socket.ReceiveAsync(new byte[16], CancellationToken.None); } catch (System.Net.WebSockets.WebSocketException) { }
            return DateTimeOffset.UtcNow;
        });
        await Ok(Cli("agent", "upgrade", "--binary", NewBinary("9.2.0-test")));
        var upgradeReturned = DateTimeOffset.UtcNow;
        var closedAt = await closed.WaitAsync(TimeSpan.FromSeconds(30));
        // The old agent's line once it has committed, just before it stops accepting and drains (agent.log: time first).
        var leaving = File.ReadLines(AgentLog).Single(l => l.Contains("draining and leaving", StringComparison.Ordinal));
        var leftAt = DateTimeOffset.Parse(leaving[..leaving.IndexOf(' ')], System.Globalization.CultureInfo.InvariantCulture);
        var open = closedAt - leftAt;
        Output.WriteLine($"websocket closed {open.TotalSeconds:0.00}s after the old agent began to leave; the upgrade returned {(upgradeReturned - closedAt).TotalSeconds:0.00}s after that");
        Assert.True(open >= TimeSpan.FromSeconds(2.8), $"closed {open.TotalSeconds:0.00}s after the drain began, before drain_timeout (3s): cut by the host's shutdown timeout (1s)?");
        Assert.True(open < TimeSpan.FromSeconds(10), $"still open {open.TotalSeconds:0.00}s after the drain began");
        Assert.True(upgradeReturned >= closedAt - TimeSpan.FromSeconds(1), "the upgrade returned before the old agent had drained and left");
    }

    /// <summary>
    /// Upgrades that cannot happen, one agent for all three (none disturbs it): a binary that exits at once, one that
    /// speaks another handover protocol, one that never connects (given up at the takeover deadline, shortened here by
    /// its test variable; the 30 s default is checked in AgentUpgradeInputTests). Each is exit 1 with the reason, under
    /// load on both apps: no request failed, same agent, same instances, still supervised by the old agent.
    /// </summary>
    [Fact]
    public async Task Refused_upgrades_to_a_binary_that_exits_at_once_speaks_another_protocol_or_never_connects_leave_the_old_agent_serving()
    {
        _environment[Cutover.Agent.AgentTakeover.DeadlineOverrideVariable] = "8000";
        await DeployBothAsync();
        var webBefore = await InstancesAsync(WebConfig);
        var bgBefore = await InstancesAsync(BgConfig);
        var agent = AgentPid;
        await using var webLoad = new LoadGenerator($"http://127.0.0.1:{_webPort}/", connections: 6, maxDuration: TimeSpan.FromMinutes(3));
        await using var bgLoad = new LoadGenerator($"http://127.0.0.1:{_bgPort}/", connections: 6, maxDuration: TimeSpan.FromMinutes(3));
        await Wait.UntilAsync(() => webLoad.NowMs > 500 && bgLoad.NowMs > 500, TimeSpan.FromSeconds(5), "load running");

        var broken = _bed.Combine("broken-cutover");
        File.WriteAllText(broken, "#!/bin/sh\nexit 1\n");
        File.SetUnixFileMode(broken, (UnixFileMode)0b111_101_101);
        var exited = await Cli("agent", "upgrade", "--binary", broken);
        Assert.Equal(1, exited.ExitCode);
        Assert.Contains("exited with code 1 before it connected", exited.Stderr);
        Assert.Contains("serves on", exited.Stderr);

        var otherProtocol = await Cli("agent", "upgrade", "--binary", NewBinary("8.0.0-test", $"{Cutover.Agent.AgentTakeover.ProtocolOverrideVariable}=99"));
        Assert.Equal(1, otherProtocol.ExitCode);
        Assert.Contains("speaks handover protocol 99", otherProtocol.Stderr);

        var hanging = _bed.Combine("hanging-cutover");
        File.WriteAllText(hanging, "#!/bin/sh\nexec sleep 123.4\n");
        File.SetUnixFileMode(hanging, (UnixFileMode)0b111_101_101);
        var clock = Stopwatch.StartNew();
        var neverConnects = await Cli("agent", "upgrade", "--binary", hanging);
        var took = clock.Elapsed;
        Assert.Equal(1, neverConnects.ExitCode);
        Assert.Contains("did not take over within 8 s", neverConnects.Stderr);
        Assert.InRange(took, TimeSpan.FromSeconds(7.5), TimeSpan.FromSeconds(20));
        Assert.Empty(OwnedProcesses.Mentioning("123.4")); // the hanging binary was killed

        await Task.Delay(300);
        AssertNoFailure(await webLoad.StopAsync(), "web");
        AssertNoFailure(await bgLoad.StopAsync(), "bg");
        Assert.Equal(agent, AgentPid);
        Assert.True(Alive(agent));
        Assert.Equal(webBefore.ToDictionary(i => i.Key, i => i.Value.Pid), (await InstancesAsync(WebConfig)).ToDictionary(i => i.Key, i => i.Value.Pid));
        Assert.Equal(bgBefore.ToDictionary(i => i.Key, i => i.Value.Pid), (await InstancesAsync(BgConfig)).ToDictionary(i => i.Key, i => i.Value.Pid));

        // Still supervised by the old agent (everything handed over was taken back; a restart proves the watch runs).
        LibC.Kill(webBefore["web-1"].Pid, 9);
        LibC.Kill(bgBefore["bg-0"].Pid, 9);
        await Wait.UntilAsync(async () => (await InstancesAsync(WebConfig))["web-1"] is { State: "ready" } i && i.Pid != webBefore["web-1"].Pid, TimeSpan.FromSeconds(30), "web-1 restarted by the old agent");
        await Wait.UntilAsync(async () => (await InstancesAsync(BgConfig))["bg-0"] is { State: "ready" } i && i.Pid != bgBefore["bg-0"].Pid, TimeSpan.FromSeconds(30), "bg-0 restarted by the old agent");
    }

    /// <summary>
    /// Issue 12's "paused apps' state moves": an upgrade while an app is paused (a deploy's migrations) moves the pause.
    /// The new agent holds new requests, the old one keeps those it holds and leaves only when the pause ends: a resume
    /// at the new agent (passed on to the old one) answers both sides' 200; a pause moved there ends both at its new
    /// timeout with 503. A pause asked while the handover runs waits for it (retried) rather than failing. Maintenance
    /// moves too.
    /// </summary>
    [Fact]
    public async Task A_pause_moves_to_the_new_agent_and_requests_held_by_either_agent_get_200_on_resume_or_503_at_its_timeout()
    {
        await DeployBothAsync(blueGreen: false);
        var url = $"http://127.0.0.1:{_webPort}/";
        // A connection of its own per request: one sent after the upgrade reaches the new agent, not a kept-alive old one.
        async Task<string> RequestAsync()
        {
            try
            {
                using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(90) };
                using var answer = await client.GetAsync(url);
                return ((int)answer.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return $"failed: {e.Message}";
            }
        }
        async Task<Task<string>[]> HoldAsync(int agent, string who)
        {
            var held = Enumerable.Range(0, 3).Select(_ => RequestAsync()).ToArray();
            await Wait.UntilAsync(async () => AgentPid == agent && (await AppAsync(WebConfig)).Traffic!.Held == 3, TimeSpan.FromSeconds(15), $"3 requests held by the {who} agent {agent}");
            return held;
        }

        // Resumed: every held request, old side and new side, is answered 200.
        await Ok(Cli("pause", "-c", WebConfig, "--timeout", "60s"));
        var first = AgentPid;
        var heldByFirst = await HoldAsync(first, "first");
        var upgrade = await Ok(Cli("agent", "upgrade", "--binary", NewBinary("9.3.0-test")));
        Assert.Contains("keeps the requests its pause holds", upgrade.Stdout);
        var second = AgentPid;
        Assert.NotEqual(first, second);
        Assert.True(Alive(first), "the old agent left while it held paused requests");
        await Wait.UntilAsync(() => LogLines("leaving: web paused") == 1, TimeSpan.FromSeconds(15), "the old agent stopped accepting");
        var heldBySecond = await HoldAsync(second, "second");
        Assert.All(heldByFirst, r => Assert.False(r.IsCompleted, "a request held by the old agent was answered during the pause"));
        var resume = await Ok(Cli("resume", "-c", WebConfig));
        Output.WriteLine(resume.Stdout.Trim());
        Assert.Equal(Enumerable.Repeat("200", 6), await Task.WhenAll(heldByFirst.Concat(heldBySecond)));
        await Wait.UntilAsync(() => !Alive(first), TimeSpan.FromSeconds(30), "the old agent left once its held requests were answered");

        // Timed out: a pause asked while the next handover is held open between adoption and commit is retried until the
        // new agent takes it; then the pause is moved to a 1 s timeout there, which ends it on both sides with 503.
        await Ok(Cli("pause", "-c", WebConfig, "--timeout", "60s"));
        var heldBySecondAgain = await HoldAsync(second, "second");
        var hold = _bed.Combine("hold-before-ready");
        var upgrading = Cli("agent", "upgrade", "--binary", NewBinary("9.3.1-test", $"{Cutover.Agent.AgentTakeover.HoldBeforeReadyVariable}={hold}"));
        await Wait.UntilAsync(() => LogLines("holding before ready") == 1 || upgrading.IsCompleted, TimeSpan.FromSeconds(60), "the new agent holding before ready");
        var pausing = Cli("pause", "-c", WebConfig, "--timeout", "50s");
        if (await Task.WhenAny(pausing, Task.Delay(2000)) == pausing)
            Assert.Fail($"a pause during the handover did not wait for it: {(await pausing).All}");
        File.WriteAllText(hold, "");
        await Ok(upgrading);
        await Ok(pausing);
        var third = AgentPid;
        Assert.NotEqual(second, third);
        await Wait.UntilAsync(() => LogLines("leaving: web paused") == 2, TimeSpan.FromSeconds(15), "the old agent stopped accepting");
        var heldByThird = await HoldAsync(third, "third");
        await Ok(Cli("pause", "-c", WebConfig, "--timeout", "1s"));
        Assert.Equal(Enumerable.Repeat("503", 6), await Task.WhenAll(heldBySecondAgain.Concat(heldByThird)));
        await Wait.UntilAsync(() => !Alive(second), TimeSpan.FromSeconds(30), "the old agent left once its pause ended");

        // Maintenance moves: the next agent answers with its page.
        await Ok(Cli("maintenance", "on", "-c", WebConfig, "--message", "back soon"));
        await Ok(Cli("agent", "upgrade", "--binary", NewBinary("9.3.2-test")));
        using var http = new HttpClient();
        using (var answer = await http.GetAsync(url))
        {
            Assert.Equal(503, (int)answer.StatusCode);
            Assert.Contains("back soon", await answer.Content.ReadAsStringAsync());
        }
        await Ok(Cli("maintenance", "off", "-c", WebConfig));
        Assert.StartsWith("hello from 1", await http.GetStringAsync(url));
    }

    /// <summary>
    /// The new agent acts on no instance exit before it commits (until then the old one may take everything back): an
    /// instance killed while the handover is held open between adoption and commit is restarted exactly once, by the
    /// old agent when the new one dies and the old takes back, and by the new agent when it commits.
    /// </summary>
    [Fact]
    public async Task An_instance_that_dies_before_the_commit_is_restarted_exactly_once_by_the_agent_that_ends_up_owning_it()
    {
        await DeployBothAsync(blueGreen: false);
        // The line a supervising agent writes the moment it acts on web-1's exit (ManagedInstance: "web-1: <problem>").
        int ActedOn() => File.Exists(AgentLog) ? File.ReadLines(AgentLog).Count(l => l.Contains(" warn ", StringComparison.Ordinal) && l.Contains(": web-1: ", StringComparison.Ordinal)) : 0;
        foreach (var commit in new[] { false, true })
        {
            var path = commit ? "commit" : "take-back";
            var before = await InstancesAsync(WebConfig);
            var actedBefore = ActedOn();
            var oldAgent = AgentPid;
            var hold = _bed.Combine($"hold-{path}");
            var seen = LogLines("holding before ready");
            var upgrading = Cli("agent", "upgrade", "--binary", NewBinary(commit ? "9.4.1-test" : "9.4.0-test", $"{Cutover.Agent.AgentTakeover.HoldBeforeReadyVariable}={hold}"));
            await Wait.UntilAsync(() => LogLines("holding before ready") > seen || upgrading.IsCompleted, TimeSpan.FromSeconds(60), $"{path}: the new agent holding before ready");
            var newAgent = TakingOverAgent(oldAgent) ?? throw new InvalidOperationException($"{path}: no new agent runs");

            var victim = before["web-1"].Pid;
            LibC.Kill(victim, 9);
            await Wait.UntilAsync(() => !Alive(victim), TimeSpan.FromSeconds(10), $"{path}: web-1 (pid {victim}) gone");
            // An agent watching the instance notices its exit at once (pidfd) and says so before anything else: a second
            // is ample for that line to appear, were anyone acting on it before the commit.
            await Task.Delay(1000);
            Assert.True(ActedOn() == actedBefore, $"{path}: an agent acted on web-1's exit before the commit");
            Assert.True(InstanceProcesses("web").Length == 2, $"{path}: an instance was started before the commit: {string.Join(", ", InstanceProcesses("web"))}");

            if (commit) File.WriteAllText(hold, "");
            else LibC.Kill(newAgent, 9);
            var upgrade = await upgrading;
            Assert.True(upgrade.ExitCode == (commit ? 0 : 1), $"{path}: exit {upgrade.ExitCode}: {upgrade.All}");
            Assert.Equal(commit ? newAgent : oldAgent, AgentPid);
            await Wait.UntilAsync(async () => (await InstancesAsync(WebConfig))["web-1"] is { State: "ready" } i && i.Pid != victim, TimeSpan.FromSeconds(30), $"{path}: web-1 replaced");
            var after = await InstancesAsync(WebConfig);
            Assert.Equal(before["web-1"].Restarts + 1, after["web-1"].Restarts);
            Assert.Equal(before["web-0"].Pid, after["web-0"].Pid);
            // Exactly one replacement: one agent acted on the exit, and every instance process of the app is one the owner
            // names, none started twice.
            Assert.Equal(actedBefore + 1, ActedOn());
            Assert.Equal(after.Values.Select(i => i.Pid).Order(), InstanceProcesses("web").Order());
            Output.WriteLine($"{path}: web-1 {victim} -> {after["web-1"].Pid}, restarted by agent {AgentPid}");
        }
    }
}

/// <summary>
/// SIGKILLs at each moment of an upgrade (no load: the kills, not the timings, are what it tests), so it runs beside
/// other test classes rather than in the serial collection, where its two minutes were the longest single test.
/// </summary>
[Trait(Needs.Trait, Needs.Slow)]
[RunsFor(150)]
public sealed class AgentUpgradeKillTests(ITestOutputHelper output) : AgentUpgradeBed(output)
{
    /// <summary>
    /// After a kill: exactly one agent serves (started anew if none does: "the next agent start"), every instance of
    /// both apps is ready and supervised by it (a killed one is restarted), and no instance runs twice or unrecorded.
    /// </summary>
    private async Task AssertOneConsistentOwnerAsync(string moment)
    {
        async Task<bool> OneAnswers() => AgentProcesses() is [var only] && (await AnsweringAgentAsync())?.Pid == only;
        // Ends early when no agent runs at all: none will appear by itself (the CLI has exited), so waiting is for nothing.
        await Wait.WithinAsync(async () => AgentProcesses().Length == 0 || await OneAnswers(), TimeSpan.FromSeconds(20), interval: TimeSpan.FromMilliseconds(100));
        if (!await OneAnswers())
        {
            Assert.True(await Wait.WithinAsync(() => AgentProcesses().Length == 0, TimeSpan.FromSeconds(20)), $"{moment}: agents {string.Join(", ", AgentProcesses())} left running");
            Output.WriteLine($"{moment}: no agent left; starting the next one");
            // As `cutover deploy` starts it: in a session of its own, output to a file.
            var start = new ProcessStartInfo("/bin/sh", ["-c", $"setsid -f dotnet exec {CutoverCli.Dll} agent --quiet >> {_bed.Combine("next-agent.log")} 2>&1 < /dev/null"]);
            start.Environment["CUTOVER_HOME"] = _bed.Home;
            using (var launcher = Process.Start(start)!) await launcher.WaitForExitAsync();
            await Wait.UntilAsync(() => AgentProcesses().Length == 1, TimeSpan.FromSeconds(20), "the next agent");
        }
        var agent = AgentProcesses().Single();
        await Wait.UntilAsync(async () => (await AnsweringAgentAsync())?.Pid == agent, TimeSpan.FromSeconds(30), $"{moment}: agent {agent} answers");
        Assert.Equal(agent, AgentPid);
        foreach (var (config, app) in new[] { (WebConfig, "web"), (BgConfig, "bg") })
        {
            await Wait.UntilAsync(async () => (await InstancesAsync(config)).Values.All(i => i.State == "ready"), TimeSpan.FromSeconds(30), $"{moment}: {app} ready");
            var instances = await InstancesAsync(config);
            Assert.Equal(app == "web" ? 3 : 2, instances.Count); // web: two web instances and the worker
            // Every instance process of the app is one status names, or the warm set's (bg); nothing twice, nothing stray.
            await Wait.UntilAsync(() => InstanceProcesses(app).Length == (app == "web" ? 3 : InstanceProcesses(app).Length == 4 ? 4 : 2), TimeSpan.FromSeconds(10), $"{moment}: {app}'s processes");
            Assert.Subset(InstanceProcesses(app).ToHashSet(), instances.Values.Select(i => i.Pid).ToHashSet());
        }
        var victim = (await InstancesAsync(WebConfig))["web-1"].Pid;
        LibC.Kill(victim, 9);
        await Wait.UntilAsync(async () => (await InstancesAsync(WebConfig))["web-1"] is { State: "ready" } i && i.Pid != victim, TimeSpan.FromSeconds(30), $"{moment}: web-1 restarted by agent {agent}");
        using var http = new HttpClient();
        Assert.StartsWith("hello from", await http.GetStringAsync($"http://127.0.0.1:{_webPort}/"));
        Assert.StartsWith("hello from", await http.GetStringAsync($"http://127.0.0.1:{_bgPort}/"));
    }

    [Fact]
    public async Task A_SIGKILL_of_the_CLI_the_old_or_the_new_agent_at_any_moment_of_an_upgrade_leaves_one_consistent_owner()
    {
        await DeployBothAsync();
        // Who is killed, and when: once agent.log has the step's line (null: once the new agent process exists), then
        // after a delay. The steps, in order: the new agent connected (old: handing over), everything sent (old),
        // ready (new), committed (new), handed over (old, leaving).
        const string Connected = "connected; handing everything over", Sent = "waiting for the new agent", Ready = "app and instance; ready",
            Committed = "upgrade: committed", Leaving = "draining and leaving";
        var moments = new (string Victim, string? Step, int AfterMs)[]
        {
            ("cli", null, 0), ("cli", Connected, 0), ("new", null, 0), ("old", null, 0),
            ("new", Connected, 0), ("old", Connected, 0), ("new", Sent, 0), ("old", Sent, 0), ("new", Ready, 0), ("old", Ready, 0),
            ("new", Committed, 0), ("old", Committed, 0), ("new", Leaving, 0), ("old", Leaving, 0), ("old", null, 2000),
        };
        int Lines(string step) => LogLines(step);
        var n = 0;
        foreach (var (victim, step, afterMs) in moments)
        {
            var moment = $"SIGKILL {victim} at '{step ?? "new agent started"}' +{afterMs} ms";
            var seen = step is null ? 0 : Lines(step);
            var oldAgent = AgentPid;
            var lines = new List<string>();
            using var cli = _bed.Start(line => { lock (lines) lines.Add(line); }, "agent", "upgrade", "--binary", NewBinary($"9.1.{n++}-test"));
            var newAgent = 0;
            await Wait.UntilAsync(() => (newAgent = TakingOverAgent(oldAgent) ?? 0) != 0 || cli.HasExited, TimeSpan.FromSeconds(30), "the new agent started", interval: TimeSpan.FromMilliseconds(5));
            if (step is not null) await Wait.UntilAsync(() => Lines(step) > seen || cli.HasExited, TimeSpan.FromSeconds(30), $"'{step}' in agent.log", interval: TimeSpan.FromMilliseconds(5));
            await Task.Delay(afterMs);
            if (victim == "cli") cli.Kill();
            else if ((victim == "new" ? newAgent : oldAgent) is var target and > 0) LibC.Kill(target, 9); // never kill(0): our own group
            Assert.True(cli.WaitForExit(TimeSpan.FromSeconds(60)), $"{moment}: the upgrade did not end");
            string said;
            lock (lines) said = string.Join(" | ", lines);
            Output.WriteLine($"{moment}: exit {(victim == "cli" ? "killed" : cli.ExitCode.ToString())}: {said}");
            try
            {
                await AssertOneConsistentOwnerAsync(moment);
            }
            catch
            {
                foreach (var log in new[] { "agent.log", "agent.stderr.log" })
                    if (File.Exists(Path.Combine(_bed.Home, log)))
                        Output.WriteLine($"--- {log}\n" + string.Join("\n", File.ReadAllLines(Path.Combine(_bed.Home, log)).TakeLast(60)));
                throw;
            }
            Output.WriteLine($"{moment}: agent {AgentPid} serves (was {oldAgent})");
        }
    }
}
/// <summary>The upgrade's bad input: refused before any agent is asked (exit 2), or no agent to upgrade (exit 1).</summary>
public sealed class AgentUpgradeInputTests : IDisposable
{
    private readonly AgentBed _bed = new();

    public void Dispose() => _bed.Dispose();

    /// <summary>The old agent gives the new one 30 s to commit; only a test shortens it (a positive number of ms in its variable).</summary>
    [Fact]
    public void The_takeover_deadline_is_30_s_unless_a_test_sets_a_positive_number_of_milliseconds()
    {
        foreach (var ignored in new string?[] { null, "", "abc", "0", "-5", "1.5", " 100" })
            Assert.Equal(TimeSpan.FromSeconds(30), Cutover.Agent.AgentTakeover.DeadlineFrom(ignored));
        Assert.Equal(TimeSpan.FromSeconds(8), Cutover.Agent.AgentTakeover.DeadlineFrom("8000"));
    }

    [Fact]
    public async Task A_binary_that_does_not_exist_is_refused_with_exit_2()
    {
        var result = await _bed.Cli("agent", "upgrade", "--binary", _bed.Combine("no-such-cutover"));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("no-such-cutover: no such file", result.Stderr);
    }

    [Fact]
    public async Task A_binary_that_is_not_executable_is_refused_with_exit_2()
    {
        var script = _bed.Combine("cutover-not-executable");
        File.WriteAllText(script, "#!/bin/sh\n");
        var result = await _bed.Cli("agent", "upgrade", "--binary", script);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("is not executable", result.Stderr);
    }

    [Fact]
    public async Task Without_a_running_agent_there_is_nothing_to_upgrade_exit_1_and_version_says_not_running()
    {
        var result = await _bed.Cli("agent", "upgrade");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("the agent is not running, so there is nothing to upgrade", result.Stderr);
        Assert.False(File.Exists(Path.Combine(_bed.Home, "agent.pid")));
        var version = await _bed.Cli("agent", "--version");
        Assert.Equal(0, version.ExitCode);
        Assert.Contains("agent: not running", version.Stdout);
    }
}
