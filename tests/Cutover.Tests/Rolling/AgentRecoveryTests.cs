using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// The agent as a process among others: a second agent on the same CUTOVER_HOME, an agent SIGKILLed while a
/// deploy starts an instance, a state.json broken while the agent was down. Real CLI, real agent, real Node app.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class AgentRecoveryTests(ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _dir = new();
    private string Home => _dir.Home;
    private string Source => _dir.Source;

    public void Dispose() => _dir.Dispose();

    private string Config(int port, string readyTimeout = "5s")
    {
        var path = _dir.Combine("node.yml");
        File.WriteAllText(path, $"""
            app: node
            strategy: rolling
            root: {_dir.Combine("root")}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: {readyTimeout}
            proxy:
              listen: 127.0.0.1:{port}
              drain_timeout: 5s
            health:
              interval: 200ms
            rolling:
              monitor: 200ms
            """);
        return path;
    }

    private void WriteVersion(string version, string? behavior = null)
    {
        if (!Directory.Exists(Source)) AppFactory.CopyTree(Path.Combine(AppContext.BaseDirectory, "examples", "node-app"), Source);
        File.WriteAllText(Path.Combine(Source, "VERSION"), version);
        var file = Path.Combine(Source, "BEHAVIOR");
        if (behavior is null) File.Delete(file);
        else File.WriteAllText(file, behavior);
    }

    private Task<CliResult> Cli(params string[] args) => _dir.Cli(args);

    private int AgentPid => int.Parse(File.ReadAllText(Path.Combine(Home, "agent.pid")));

    /// <summary>`cutover agent` in the foreground, as a person or a unit file would start it.</summary>
    private Process StartAgent(List<string> lines) => _dir.Start(line => { lock (lines) lines.Add(line); }, "agent");

    private static async Task<string?> WaitForBodyAsync(string url, TimeSpan limit)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        string? body = null;
        await Wait.WithinAsync(async () =>
        {
            try
            {
                using var response = await client.GetAsync(url);
                if (response.IsSuccessStatusCode) body = await response.Content.ReadAsStringAsync();
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException) { }
            return body is not null;
        }, limit, TimeSpan.FromMilliseconds(100));
        return body;
    }

    /// <summary>Processes whose environment holds every one of <paramref name="pairs"/>, with their environment.</summary>
    private static List<(int Pid, Dictionary<string, string> Env)> ProcessesWith(params string[] pairs)
    {
        var found = new List<(int, Dictionary<string, string>)>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var entries = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                if (!pairs.All(entries.Contains)) continue;
                found.Add((pid, entries.Where(e => e.Contains('=')).GroupBy(e => e[..e.IndexOf('=')]).ToDictionary(g => g.Key, g => g.First()[(g.Key.Length + 1)..])));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        }
        return found;
    }

    private static bool Listens(int port)
    {
        try
        {
            using var tcp = new TcpClient();
            tcp.Connect(System.Net.IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    [Fact]
    public async Task A_second_agent_on_the_same_home_refuses_naming_the_first_and_touches_nothing()
    {
        var port = HealthServer.FreePort();
        var config = Config(port);
        WriteVersion("1");
        var deploy = await Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        var first = AgentPid;
        var socketInode = Cutover.Platform.LibC.Inode(Path.Combine(Home, "agent.sock"));

        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 8, maxDuration: TimeSpan.FromMinutes(1));
        await Task.Delay(300);
        var lines = new List<string>();
        using var second = StartAgent(lines);
        var refused = second.WaitForExit(TimeSpan.FromSeconds(30));
        if (!refused) second.Kill(entireProcessTree: true);
        await Task.Delay(500);
        var samples = await load.StopAsync();
        second.WaitForExit();
        var said = string.Join("\n", lines);
        output.WriteLine(said);
        output.WriteLine($"{samples.Count} requests while the second agent ran, {samples.Count(s => s.Status != 200)} failed");

        Assert.True(refused, "the second agent kept running");
        Assert.Equal(1, second.ExitCode);
        Assert.Contains($"another agent (pid {first}) already runs on {Home}", said);
        Assert.True(samples.Count > 0);
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        // The first agent's socket, pid file and instances are as they were: status reaches it, deploys still work.
        Assert.Equal(first, AgentPid);
        Assert.Equal(socketInode, Cutover.Platform.LibC.Inode(Path.Combine(Home, "agent.sock")));
        var status = JsonDocument.Parse((await Cli("status", "--json", "-c", config)).Stdout).RootElement;
        Assert.All(status.GetProperty("agent").GetProperty("instances").EnumerateArray(), i => Assert.Equal("ready", i.GetProperty("state").GetString()));
        WriteVersion("2");
        var again = await Cli("deploy", Source, "-c", config);
        Assert.True(again.ExitCode == 0, again.All);
        Assert.DoesNotContain("started the agent", again.Stdout);
        Assert.Equal(first, AgentPid);
    }

    [Fact]
    public async Task An_agent_killed_while_a_deploy_starts_an_instance_leaves_nothing_of_that_deploy_after_its_restart()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, readyTimeout: "2m");
        WriteVersion("1");
        var deploy = await Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        var live = JsonDocument.Parse((await Cli("status", "--json", "-c", config)).Stdout).RootElement.GetProperty("current").GetProperty("id").GetString()!;

        // Release 2 listens but never says ready: its first instance stays "starting" as long as the test likes.
        WriteVersion("2", behavior: "never-ready");
        var hangingStart = _dir.StartInfo("deploy", Source, "-c", config);
        hangingStart.RedirectStandardOutput = hangingStart.RedirectStandardError = false;
        using var hanging = Process.Start(hangingStart)!;
        hanging.StandardInput.Close();
        List<(int Pid, Dictionary<string, string> Env)> fresh = [];
        await Wait.WithinAsync(() =>
        {
            fresh = ProcessesWith($"CUTOVER_HOME={Home}", "CUTOVER_APP=node").Where(p => p.Env.GetValueOrDefault("CUTOVER_RELEASE_ID") is { } r && r != live).ToList();
            return fresh.Count > 0 && fresh.All(p => p.Env.TryGetValue("PORT", out var portText) && Listens(int.Parse(portText)));
        }, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(100));
        Assert.NotEmpty(fresh);
        var newRelease = fresh[0].Env["CUTOVER_RELEASE_ID"];
        var newPorts = fresh.Select(p => int.Parse(p.Env["PORT"])).Distinct().ToList();
        output.WriteLine($"release {newRelease} starting: pids {string.Join(", ", fresh.Select(p => p.Pid))}, ports {string.Join(", ", newPorts)}");

        Cutover.Platform.LibC.Kill(AgentPid, 9);
        hanging.WaitForExit(30_000);
        var lines = new List<string>();
        using var restarted = StartAgent(lines);
        Assert.StartsWith("hello from 1", await WaitForBodyAsync($"http://127.0.0.1:{port}/", TimeSpan.FromSeconds(60)));
        output.WriteLine(string.Join("\n", lines));

        // This home's processes only: release ids go down to the second, and other tests deploy beside this one.
        Assert.Empty(ProcessesWith($"CUTOVER_HOME={Home}", $"CUTOVER_RELEASE_ID={newRelease}"));
        Assert.All(newPorts, p => Assert.False(Listens(p), $"port {p} of the killed deploy still listens"));
        Assert.Contains(lines, l => l.Contains("left running by a previous agent"));
    }

    /// <summary>
    /// Blue-green, from spawn to switch. A restarted instance (a change of pids only) rewrites state.json without touching
    /// its last good copy, which keeps naming what runs; an agent killed while the green set starts, with state.json then
    /// torn (what a machine crash may do to a write of pids, which is not fsynced), comes back on blue's release from the
    /// copy, and nothing of green survives.
    /// </summary>
    [Fact]
    public async Task A_blue_green_agent_killed_between_green_spawn_and_switch_comes_back_on_blue_even_from_the_last_good_copy()
    {
        var port = HealthServer.FreePort();
        var config = _dir.Combine("bg.yml");
        File.WriteAllText(config, $"""
            app: node
            strategy: blue-green
            root: {_dir.Combine("root")}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 2m
            proxy:
              listen: 127.0.0.1:{port}
              drain_timeout: 5s
            blue_green:
              monitor: 0s
            """);
        WriteVersion("1");
        var deploy = await Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        var live = JsonDocument.Parse((await Cli("status", "--json", "-c", config)).Stdout).RootElement.GetProperty("current").GetProperty("id").GetString()!;
        var state = Path.Combine(Home, "state.json");
        var lastGood = Path.Combine(Home, "state.last-good.json");
        var copy = (Inode: Cutover.Platform.LibC.Inode(lastGood), Text: File.ReadAllText(lastGood));
        List<int> StatePids() => JsonDocument.Parse(File.ReadAllText(state)).RootElement.GetProperty("apps")[0].GetProperty("instances")
            .EnumerateArray().Select(i => i.GetProperty("pid") is { ValueKind: JsonValueKind.Number } pid ? pid.GetInt32() : 0).ToList();

        // A change of pids only: supervision restarts a killed instance.
        var killed = StatePids()[0];
        Cutover.Platform.LibC.Kill(killed, 9);
        await Wait.UntilAsync(() => StatePids() is { Count: 2 } pids && !pids.Contains(killed), TimeSpan.FromSeconds(30), "state.json to name the restarted instance");
        Assert.Equal(copy.Inode, Cutover.Platform.LibC.Inode(lastGood));
        Assert.Equal(copy.Text, File.ReadAllText(lastGood));

        // Release 2 listens but never says ready: green stays between spawn and switch as long as the test likes.
        WriteVersion("2", behavior: "never-ready");
        var hangingStart = _dir.StartInfo("deploy", Source, "-c", config);
        hangingStart.RedirectStandardOutput = hangingStart.RedirectStandardError = false;
        using var hanging = Process.Start(hangingStart)!;
        hanging.StandardInput.Close();
        List<(int Pid, Dictionary<string, string> Env)> green = [];
        await Wait.UntilAsync(() =>
        {
            green = ProcessesWith($"CUTOVER_HOME={Home}", "CUTOVER_APP=node").Where(p => p.Env.GetValueOrDefault("CUTOVER_RELEASE_ID") is { } r && r != live).ToList();
            // Each instance is its exit-status wrapper and the app under it, with one environment: two ports, each named in state.json by its pid.
            return green.Select(p => p.Env["PORT"]).Distinct().Count() == 2 && green.All(p => Listens(int.Parse(p.Env["PORT"])))
                   && StatePids().Count(pid => green.Any(g => g.Pid == pid)) == 2;
        }, TimeSpan.FromSeconds(60), "the green set to listen and state.json to name it");
        var greenRelease = green[0].Env["CUTOVER_RELEASE_ID"];
        Assert.Contains(live, File.ReadAllText(state));
        Assert.DoesNotContain(greenRelease, File.ReadAllText(lastGood));

        Cutover.Platform.LibC.Kill(AgentPid, 9);
        hanging.WaitForExit(30_000);
        var torn = File.ReadAllText(state);
        File.WriteAllText(state, torn[..(torn.Length / 2)]);
        var lines = new List<string>();
        using var restarted = StartAgent(lines);
        Assert.StartsWith("hello from 1", await WaitForBodyAsync($"http://127.0.0.1:{port}/", TimeSpan.FromSeconds(60)));
        output.WriteLine(string.Join("\n", lines));

        Assert.Contains(lines, l => l.Contains("is corrupt") && l.Contains("restored 1 app(s) (node)"));
        Assert.Empty(ProcessesWith($"CUTOVER_HOME={Home}", $"CUTOVER_RELEASE_ID={greenRelease}"));
        Assert.All(green, p => Assert.False(Listens(int.Parse(p.Env["PORT"])), $"port {p.Env["PORT"]} of the green set still listens"));
        var restored = JsonDocument.Parse(File.ReadAllText(state)).RootElement.GetProperty("apps")[0];
        Assert.Equal(live, restored.GetProperty("release_id").GetString());
    }

    [Fact]
    public async Task A_corrupt_state_file_is_restored_from_its_last_good_copy_and_said_out_loud()
    {
        var port = HealthServer.FreePort();
        var config = Config(port);
        WriteVersion("1");
        var deploy = await Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        AgentProcess.Stop(Home, 15);
        var state = Path.Combine(Home, "state.json");
        var good = File.ReadAllText(state);
        File.WriteAllText(state, good[..(good.Length / 2)]); // a torn write by something that is not the agent

        var lines = new List<string>();
        using var agent = StartAgent(lines);
        Assert.StartsWith("hello from 1", await WaitForBodyAsync($"http://127.0.0.1:{port}/", TimeSpan.FromSeconds(60)));
        Assert.Contains(lines, l => l.Contains("is corrupt") && l.Contains("restored 1 app(s) (node)"));
        Assert.Contains("restored 1 app(s) (node)", File.ReadAllText(Path.Combine(Home, "agent.log")));
        // The broken file is kept for a person to look at, never silently overwritten.
        var kept = Assert.Single(Directory.GetFiles(Home, "state.corrupt-*.json"));
        Assert.Equal(good[..(good.Length / 2)], File.ReadAllText(kept));

        var status = await Cli("status", "-c", config);
        Assert.True(status.ExitCode == 0, status.All);
        Assert.Contains("warning: the agent:", status.Stderr);
        Assert.Contains("is corrupt", status.Stderr);
        var json = JsonDocument.Parse((await Cli("status", "--json", "-c", config)).Stdout).RootElement;
        Assert.Contains("restored 1 app(s)", Assert.Single(json.GetProperty("agent_warnings").EnumerateArray()).GetString());
        Assert.Equal(0, (await Cli("stop", "-c", config)).ExitCode);
        var start = await Cli("start", "-c", config);
        Assert.True(start.ExitCode == 0, start.All);
    }

    [Theory]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("{\"apps\": null}")]
    [InlineData("{\"apps\": [null]}")]
    [InlineData("{\"apps\": [{\"app\": \"a\"}]}")]
    public void A_state_file_that_is_not_a_valid_state_is_never_read_as_no_apps(string broken)
    {
        var home = new Cutover.Agent.AgentHome(Home);
        Directory.CreateDirectory(Home);
        var store = new Cutover.Agent.AgentStateStore(home);
        store.Write(new Cutover.Agent.AgentState { Apps = [new Cutover.Agent.AppRecord { App = "shop", ConfigFile = "/srv/shop.yml", ReleaseId = "r1", ReleaseDir = "/srv/r1" }] });
        File.WriteAllText(home.State, broken);

        var read = store.Read();
        Assert.Equal("r1", Assert.Single(read.State.Apps).ReleaseId);
        Assert.Contains("is corrupt", read.Warning);
        Assert.False(File.Exists(home.State));
        Assert.Equal(broken, File.ReadAllText(Assert.Single(Directory.GetFiles(Home, "state.corrupt-*.json"))));

        // With no good copy either, the agent still says so rather than starting quietly with nothing.
        File.WriteAllText(home.State, broken);
        File.Delete(store.LastGood);
        Assert.Contains("there is no last good copy", store.Read().Warning);
    }
}
