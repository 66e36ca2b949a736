using System.Diagnostics;
using System.Text.Json;
using Cutover.BlueGreen;
using Cutover.Config;
using Cutover.Containers;
using Cutover.Progress;
using Cutover.Rolling;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Cutover.Tests.Containers;

/// <summary>One real dockerd for the container tests of a class, with the test images imported.</summary>
public sealed class DockerFixture : IAsyncLifetime
{
    public DockerEngine Engine { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Engine = await DockerEngine.StartAsync();
        await Engine.ImportAppImageAsync("cutover-test:1", "1");
        await Engine.ImportAppImageAsync("cutover-test:2", "2");
        await Engine.ImportAppImageAsync("cutover-test:sick", "sick", healthy: false);
    }

    public async Task DisposeAsync() => await Engine.DisposeAsync();
}

/// <summary>runtime: docker — the same rolling and blue-green logic as for processes, with containers behind the proxy.</summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Docker)]
public sealed class DockerRuntimeTests(DockerFixture docker, ITestOutputHelper output) : IClassFixture<DockerFixture>, IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();
    private AppRuntime? _app;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        _http.Dispose();
        _dir.Dispose();
    }

    // healthcheck interval 500 ms: Docker runs the first check one interval after the start (this dockerd has no
    // start_interval), so every container start waited at least a whole second for it; shorter still costs a docker
    // exec per container that often.
    private string ConfigYaml(string strategy, int port, string app, string dockerExtra = "", string extra = "", string readyTimeout = "8s") => $"""
        app: {app}
        strategy: {strategy}
        root: {_dir.Path}
        runtime: docker
        docker:
          host: {docker.Engine.Host}
          image: cutover-test:1
          port: 3000
          network: {app}-net
          healthcheck: {"{"} test: ["CMD", "test", "-e", "/www/healthy"], interval: 500ms, timeout: 10s, retries: 3 {"}"}
        {dockerExtra}
        run:
          instances: 2
          ready_timeout: {readyTimeout}
          kill_timeout: 5s
        proxy:
          listen: 127.0.0.1:{port}
          drain_timeout: 5s
        health:
          path: /health
          interval: 300ms
        {(strategy == "blue-green" ? "blue_green:\n  monitor: 500ms\n  keep_previous: 10m\n" : "rolling:\n  monitor: 500ms\n")}
        {extra}
        """;

    private async Task<AppRuntime> StartAsync(string strategy, string app, string dockerExtra = "", string extra = "", string readyTimeout = "8s")
    {
        var config = ConfigLoader.Parse(ConfigYaml(strategy, HealthServer.FreePort(), app, dockerExtra, extra, readyTimeout), _dir.Combine("cutover.yml"));
        _app = await AppRuntime.CreateAsync(config, _dir.Combine("home"), _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await _app.StartAllAsync("r1", Release("r1", "cutover-test:1"), CancellationToken.None));
        return _app;
    }

    private string Release(string id, string image)
    {
        var dir = _dir.Combine("releases", id);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, ContainerRelease.ImageFile), image);
        return dir;
    }

    private string Url => $"http://127.0.0.1:{_app!.Proxy.Listen.Port}/";

    private async Task<string[]> ContainersAsync(string app)
    {
        var (_, ids) = await docker.Engine.DockerAsync(["ps", "-q", "--no-trunc", "--filter", $"label=cutover.app={app}"]);
        return ids.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToArray();
    }

    [Fact]
    public async Task A_process_type_is_a_container_of_the_release_image_with_its_own_command_replaced_by_a_deploy()
    {
        var app = await StartAsync("rolling", "jobs", extra: """
            processes:
              worker:
                command: echo "worker up as $CUTOVER_PROCESS port=${PORT:-none}"; exec sleep 1000
                stop_signal: SIGTERM
                kill_timeout: 2s
                restart: { min_uptime: 500ms }
            """);
        var worker = app.Groups.Single(g => g.Name == "worker").Slots.Single()!;
        Assert.StartsWith("container ", worker.Description);
        Assert.Equal(InstanceState.Ready, worker.State);
        Assert.Null(worker.Backend);
        var containers = await ContainersAsync("jobs");
        Assert.Equal(3, containers.Length);
        var (_, labels) = await docker.Engine.DockerAsync(["ps", "--filter", "label=cutover.app=jobs", "--filter", "label=cutover.process=worker", "--no-trunc", "--format", "{{.ID}} {{.Command}}"]);
        Assert.Contains("sleep 1000", labels);
        await Wait.UntilAsync(() => File.ReadAllText(app.Log.CurrentPath).Contains("worker up as worker port=none"), TimeSpan.FromSeconds(10), "the worker's own output");
        Assert.Equal(2, app.Proxy.Pool.Backends.Length);

        var result = await new RollingUpdate(app, new SilentProgress()).RunAsync("d1", Release("d1", "cutover-test:2"), CancellationToken.None);
        Assert.True(result.Succeeded, result.Error);
        var replaced = app.Groups.Single(g => g.Name == "worker").Slots.Single()!;
        Assert.Equal("d1", replaced.Spec.ReleaseId);
        Assert.NotEqual(worker.Description, replaced.Description);
        var after = await ContainersAsync("jobs");
        Assert.Equal(3, after.Length);
        Assert.Empty(containers.Intersect(after)); // every container replaced, the old ones removed
    }

    [Fact]
    public async Task Rolling_deploys_of_containers_under_load_fail_no_request()
    {
        var app = await StartAsync("rolling", "roll");
        Assert.All(app.Slots, s => Assert.StartsWith("container ", s!.Description));
        await using var load = new LoadGenerator(Url, connections: 8, maxDuration: TimeSpan.FromMinutes(2));
        var doneMs = new List<(string Version, double At)>();
        var versions = new[] { "2", "1", "2", "1" };
        for (var i = 0; i < versions.Length; i++)
        {
            var id = $"d{i}";
            var before = await ContainersAsync("roll");
            var result = await new RollingUpdate(app, new SilentProgress()).RunAsync(id, Release(id, $"cutover-test:{versions[i]}"), CancellationToken.None);
            Assert.True(result.Succeeded, result.Error);
            doneMs.Add((versions[i], load.NowMs));
            var after = await ContainersAsync("roll");
            Assert.Empty(before.Intersect(after)); // every container replaced, the old ones removed
            Assert.True(after.Length == 2, (await docker.Engine.DockerAsync(["ps", "-a", "--no-trunc"])).Output + string.Join("\n", app.Slots.Select(sl => $"{sl!.Spec.Id} {sl.Description} {sl.State} {sl.LastProblem}")));
        }
        await Task.Delay(300);
        var samples = await load.StopAsync();
        output.WriteLine($"{samples.Count} requests through containers, {samples.Count(s => s.Status != 200)} failed");
        Assert.True(samples.Count > 200);
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.All(samples.Where(s => s.StartMs > doneMs[^1].At), s => Assert.Equal("1", s.Version));
    }

    [Fact]
    public async Task Blue_green_with_containers_switches_at_once_and_rolls_back_without_starting_one()
    {
        var app = await StartAsync("blue-green", "bg");
        await using var load = new LoadGenerator(Url, connections: 8, maxDuration: TimeSpan.FromMinutes(2));
        var warm = new WarmSetKeeper();
        Assert.Null(await new BlueGreenSwitch(app, warm, new SilentProgress()).RunAsync("g2", Release("g2", "cutover-test:2"), CancellationToken.None));
        var switched = load.NowMs;
        await Task.Delay(300);
        var containers = await ContainersAsync("bg");
        Assert.Equal(4, containers.Length); // the old set stays warm
        var clock = Stopwatch.StartNew();
        Assert.Null(await new BlueGreenSwitch(app, warm, new SilentProgress()).RunAsync("r1", _dir.Combine("releases", "r1"), CancellationToken.None));
        var rollback = clock.Elapsed;
        var back = load.NowMs;
        await Task.Delay(300);
        var samples = await load.StopAsync();

        Assert.Equal(containers, await ContainersAsync("bg")); // a switch: no container started or removed
        Assert.True(rollback < TimeSpan.FromMilliseconds(100), $"rollback took {rollback.TotalMilliseconds} ms");
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.All(samples.Where(s => s.StartMs > switched && s.EndMs < back - 50), s => Assert.Equal("2", s.Version));
        Assert.All(samples.Where(s => s.StartMs > back), s => Assert.Equal("1", s.Version));
    }

    [Fact]
    public async Task A_container_failing_its_healthcheck_never_gets_traffic_and_the_old_ones_keep_serving()
    {
        // A container that stays unhealthy is waited for until ready_timeout (a later check could still pass): 4 s is
        // enough for the first good set to start and for the sick one to fail its three checks (1.5 s).
        var app = await StartAsync("rolling", "sick", readyTimeout: "4s");
        await using var load = new LoadGenerator(Url, connections: 4, maxDuration: TimeSpan.FromMinutes(1));
        // Its /health answers 200 (Cutover's own check would pass); only the container HEALTHCHECK says no.
        var result = await new RollingUpdate(app, new SilentProgress()).RunAsync("bad", Release("bad", "cutover-test:sick"), CancellationToken.None);
        await Task.Delay(200);
        var samples = await load.StopAsync();

        Assert.False(result.Succeeded);
        Assert.Contains("container healthcheck", result.Error);
        Assert.DoesNotContain(samples, s => s.Version == "sick");
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.All(app.Slots, s => Assert.Equal("r1", s!.Spec.ReleaseId));
        Assert.Equal(2, (await ContainersAsync("sick")).Length); // the failed one was removed
    }

    [Fact]
    public async Task Volumes_and_env_reach_the_container()
    {
        var www = _dir.Combine("www");
        Directory.CreateDirectory(www);
        File.WriteAllText(Path.Combine(www, "index.html"), "hello from the-volume (host dir)\n");
        File.WriteAllText(Path.Combine(www, "health"), "ok\n");
        File.WriteAllText(Path.Combine(www, "healthy"), "yes\n");
        var app = await StartAsync("rolling", "vol", $"  volumes: [\"{www}:/www:ro\"]\n  env: {{ GREETING: hi }}");
        Assert.StartsWith("hello from the-volume", await _http.GetStringAsync(Url));
        var id = (await ContainersAsync("vol"))[0];
        var (_, env) = await docker.Engine.DockerAsync(["inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", id]);
        Assert.Contains("GREETING=hi", env);
        Assert.Contains("PORT=3000", env);
        Assert.Contains("CUTOVER_RELEASE_ID=r1", env);
    }

    [Fact]
    public async Task A_restarted_agent_adopts_the_running_containers_instead_of_starting_new_ones()
    {
        var home = _dir.Combine("agent-home");
        var port = HealthServer.FreePort();
        var configFile = _dir.Combine("adopt.yml");
        // The worker says one line when it starts: an adoption must not write the container's earlier lines again.
        File.WriteAllText(configFile, ConfigYaml("rolling", port, "adopt", extra: """
            processes:
              worker:
                command: echo "worker started once"; exec sleep 1000
                stop_signal: SIGTERM
                kill_timeout: 2s
            """).Replace($"root: {_dir.Path}", $"root: {_dir.Combine("adopt-root")}"));
        var env = new Dictionary<string, string> { ["CUTOVER_HOME"] = home };
        try
        {
            var first = await CutoverCli.RunAsync(_dir.Path, env, "deploy", "-c", configFile);
            Assert.True(first.ExitCode == 0, first.All);
            var deploy = await CutoverCli.RunAsync(_dir.Path, env, "deploy", "--image", "cutover-test:2", "-c", configFile);
            Assert.True(deploy.ExitCode == 0, deploy.All);
            Assert.Contains("image cutover-test:2", deploy.All);
            var before = await ContainersAsync("adopt");
            Assert.Equal(3, before.Length);
            async Task<int> WorkerStartedLinesAsync()
            {
                var logs = await CutoverCli.RunAsync(_dir.Path, env, "logs", "--process", "worker", "-c", configFile);
                Assert.True(logs.ExitCode == 0, logs.All);
                return logs.Stdout.Split('\n').Count(l => l.Contains("worker started once", StringComparison.Ordinal));
            }
            var startedLines = 0;
            await Wait.UntilAsync(async () => (startedLines = await WorkerStartedLinesAsync()) == 2, TimeSpan.FromSeconds(10), "each deploy's worker said it started");
            using var client = new HttpClient();
            Assert.StartsWith("hello from 2", await client.GetStringAsync($"http://127.0.0.1:{port}/"));

            // The agent goes away; the containers do not.
            AgentProcess.Stop(home, 15);
            Assert.Equal(before, await ContainersAsync("adopt"));

            var agent = CutoverCli.StartInfo(_dir.Path, "agent");
            agent.Environment["CUTOVER_HOME"] = home;
            using var restarted = Process.Start(agent)!;
            string? body = null;
            await Wait.WithinAsync(async () =>
            {
                try { body = await client.GetStringAsync($"http://127.0.0.1:{port}/"); }
                catch (HttpRequestException) { }
                return body is not null;
            }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100));
            Assert.StartsWith("hello from 2", body);
            Assert.Equal(before, await ContainersAsync("adopt"));
            var status = await CutoverCli.RunAsync(_dir.Path, env, "status", "--json", "-c", configFile);
            var instances = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("agent").GetProperty("instances").EnumerateArray().ToList();
            Assert.All(instances, i => Assert.Equal("ready", i.GetProperty("state").GetString()));
            Assert.All(instances, i => Assert.StartsWith("container ", i.GetProperty("runs_as").GetString()));
            // One line per worker container started (one per deploy), none written again by the adoption.
            Assert.Equal(startedLines, await WorkerStartedLinesAsync());

            // rollback: a rolling replacement back to the previous release's image
            var rollback = await CutoverCli.RunAsync(_dir.Path, env, "rollback", "-c", configFile);
            Assert.True(rollback.ExitCode == 0, rollback.All);
            Assert.StartsWith("hello from 1", await client.GetStringAsync($"http://127.0.0.1:{port}/"));

            var stop = await CutoverCli.RunAsync(_dir.Path, env, "stop", "-c", configFile);
            Assert.Equal(0, stop.ExitCode);
            Assert.Empty(await ContainersAsync("adopt"));
        }
        finally
        {
            AgentProcess.Stop(home, 15);
            OwnedProcesses.KillByEnvironment("CUTOVER_HOME", home);
        }
    }

    /// <summary>
    /// Issue 12 with containers: one killed (docker kill) while an agent upgrade is held open before its commit. Neither
    /// agent acts on it then; the agent that ends up owning it (the old one after a take-back, the new one after the
    /// commit) replaces it exactly once, and docker runs exactly the containers that agent lists.
    /// </summary>
    [Fact]
    public async Task A_container_that_dies_during_an_agent_upgrade_is_replaced_once_by_the_agent_that_ends_up_owning_it()
    {
        var home = _dir.Combine("agent-home");
        var configFile = _dir.Combine("upgrade.yml");
        File.WriteAllText(configFile, ConfigYaml("rolling", HealthServer.FreePort(), "upg").Replace($"root: {_dir.Path}", $"root: {_dir.Combine("upgrade-root")}"));
        var env = new Dictionary<string, string> { ["CUTOVER_HOME"] = home };
        var agentLog = Path.Combine(home, "agent.log");
        string[] LogLines(string text) => File.Exists(agentLog) ? File.ReadLines(agentLog).Where(l => l.Contains(text, StringComparison.Ordinal)).ToArray() : [];
        // The line an agent writes the moment it acts on upg-1's exit (ManagedInstance), naming that agent's pid.
        string[] ActedOn() => LogLines(": upg-1: ").Where(l => l.Contains(" warn ", StringComparison.Ordinal)).ToArray();
        int AgentPid() => int.Parse(File.ReadAllText(Path.Combine(home, "agent.pid")));
        async Task<Dictionary<string, Cutover.Agent.InstanceView>> InstancesAsync()
        {
            using var client = new Cutover.Agent.AgentClient(new Cutover.Agent.AgentHome(home));
            return (await client.AppsAsync(CancellationToken.None)).Single(a => a.App == "upg").Instances.ToDictionary(i => i.Id);
        }
        // "container 3f2a1b9c12ab (pid 1234)" -> the short id `docker ps` prints.
        static string ContainerOf(Cutover.Agent.InstanceView instance) => instance.RunsAs!.Split(' ')[1];
        async Task<string[]> DockerPsAsync(bool all = false)
        {
            var (_, ids) = await docker.Engine.DockerAsync(["ps", .. (all ? new[] { "-a" } : []), "-q", "--filter", "label=cutover.app=upg"]);
            return ids.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order().ToArray();
        }
        try
        {
            var deploy = await CutoverCli.RunAsync(_dir.Path, env, "deploy", "-c", configFile);
            Assert.True(deploy.ExitCode == 0, deploy.All);
            foreach (var commit in new[] { false, true })
            {
                var path = commit ? "commit" : "take-back";
                var before = await InstancesAsync();
                var acted = ActedOn().Length;
                var oldAgent = AgentPid();
                var hold = _dir.Combine($"hold-{path}");
                var script = _dir.Combine($"cutover-{path}");
                File.WriteAllText(script, $"#!/bin/sh\n{Cutover.Agent.AgentTakeover.HoldBeforeReadyVariable}={hold} exec dotnet exec {CutoverCli.Dll} \"$@\"\n");
                File.SetUnixFileMode(script, (UnixFileMode)0b111_101_101);
                var holding = LogLines("holding before ready").Length;
                var upgrading = CutoverCli.RunAsync(_dir.Path, env, "agent", "upgrade", "--binary", script);
                await Wait.UntilAsync(() => LogLines("holding before ready").Length > holding || upgrading.IsCompleted, TimeSpan.FromSeconds(60), $"{path}: the new agent holding before ready");
                if (upgrading.IsCompleted) Assert.Fail($"{path}: the upgrade ended before the hold: {(await upgrading).All}");
                var started = System.Text.RegularExpressions.Regex.Match(LogLines("upgrade: started the new agent (pid ")[^1], @"\(pid (\d+)\)");
                var newAgent = int.Parse(started.Groups[1].Value);

                var victim = ContainerOf(before["upg-1"]);
                await docker.Engine.DockerAsync(["kill", victim]);
                // An agent watching it hears of the exit at once (the Engine's wait) and says so first: a second is ample.
                await Task.Delay(1000);
                Assert.True(ActedOn().Length == acted, $"{path}: an agent acted on upg-1's exit before the commit: {string.Join(" | ", ActedOn().Skip(acted))}");
                Assert.Equal([ContainerOf(before["upg-0"])], await DockerPsAsync());
                Assert.Equal(2, (await DockerPsAsync(all: true)).Length); // nothing started, nothing removed

                if (commit) File.WriteAllText(hold, "");
                else Cutover.Platform.LibC.Kill(newAgent, 9);
                var upgrade = await upgrading;
                Assert.True(upgrade.ExitCode == (commit ? 0 : 1), $"{path}: exit {upgrade.ExitCode}: {upgrade.All}");
                var owner = AgentPid();
                Assert.Equal(commit ? newAgent : oldAgent, owner);
                await Wait.UntilAsync(async () => (await InstancesAsync())["upg-1"] is { State: "ready" } i && ContainerOf(i) != victim, TimeSpan.FromSeconds(30), $"{path}: upg-1 replaced");
                var after = await InstancesAsync();
                Assert.Equal(before["upg-1"].Restarts + 1, after["upg-1"].Restarts);
                Assert.Equal(ContainerOf(before["upg-0"]), ContainerOf(after["upg-0"]));
                // One agent acted, the owner; docker runs exactly what it lists, and the dead container is gone.
                var acting = ActedOn().Skip(acted).ToArray();
                Assert.True(acting.Length == 1 && acting[0].Contains($"agent pid {owner})", StringComparison.Ordinal), $"{path}: acted on by: {string.Join(" | ", acting)}");
                var listed = after.Values.Select(ContainerOf).Order().ToArray();
                Assert.Equal(listed, await DockerPsAsync());
                Assert.Equal(listed, await DockerPsAsync(all: true));
                output.WriteLine($"{path}: upg-1 {victim} -> {ContainerOf(after["upg-1"])}, replaced by agent {owner}");
            }
            var stop = await CutoverCli.RunAsync(_dir.Path, env, "stop", "-c", configFile);
            Assert.Equal(0, stop.ExitCode);
            Assert.Empty(await DockerPsAsync(all: true));
        }
        finally
        {
            AgentProcess.Stop(home, 15);
            OwnedProcesses.KillByEnvironment("CUTOVER_HOME", home);
        }
    }

    [Fact]
    public async Task An_agent_killed_while_the_first_deploy_starts_a_container_leaves_no_container_after_its_restart()
    {
        var home = _dir.Combine("agent-home");
        var configFile = _dir.Combine("orphan.yml");
        // The sick image never passes its HEALTHCHECK: the container stays "starting" as long as the test likes.
        File.WriteAllText(configFile, ConfigYaml("rolling", HealthServer.FreePort(), "orphan", readyTimeout: "2m")
            .Replace($"root: {_dir.Path}", $"root: {_dir.Combine("orphan-root")}"));
        try
        {
            var start = CutoverCli.StartInfo(_dir.Path, "deploy", "--image", "cutover-test:sick", "-c", configFile);
            start.Environment["CUTOVER_HOME"] = home;
            start.RedirectStandardOutput = start.RedirectStandardError = false;
            using var deploy = Process.Start(start)!;
            deploy.StandardInput.Close();
            await Wait.WithinAsync(async () => (await ContainersAsync("orphan")).Length > 0, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(200));
            Assert.NotEmpty(await ContainersAsync("orphan"));

            AgentProcess.Stop(home, 9);
            deploy.WaitForExit(30_000);
            Assert.NotEmpty(await ContainersAsync("orphan")); // containers outlive the agent, by design

            var agent = CutoverCli.StartInfo(_dir.Path, "agent");
            agent.Environment["CUTOVER_HOME"] = home;
            using var restarted = Process.Start(agent)!;
            await Wait.WithinAsync(async () => (await ContainersAsync("orphan")).Length == 0, TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(200));
            Assert.Empty(await ContainersAsync("orphan"));
        }
        finally
        {
            AgentProcess.Stop(home, 15);
            OwnedProcesses.KillByEnvironment("CUTOVER_HOME", home);
        }
    }
}
