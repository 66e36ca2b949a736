using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// `cutover restart [PROCESS]` and `cutover scale TYPE=N` through the real CLI and agent, with Node web instances under
/// load and Node workers (<see cref="JobWorker"/>); also a deploy whose config changes the counts or adds a type.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class RestartScaleTests(ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _bed = new();
    private string Journal => _bed.Combine("journal.log");

    public void Dispose() => _bed.Dispose();

    private string Config(int port, int web = 2, string processes = "", string strategy = "rolling", string strategySection = "rolling:\n  monitor: 200ms", string? journal = null)
    {
        var path = _bed.Combine("cutover.yml");
        File.WriteAllText(path, $"""
            app: node
            strategy: {strategy}
            root: {_bed.Root}
            run:
              command: node server.js
              instances: {web}
              ready: message
              ready_timeout: 5s
              env:
                JOB_LOG: {journal ?? Journal}
            proxy:
              listen: 127.0.0.1:{port}
              drain_timeout: 5s
            health:
              interval: 200ms
            {strategySection}
            """ + (processes.Length == 0 ? "" : "\nprocesses:\n" + processes));
        return path;
    }

    private const string Worker = """
          worker:
            command: node worker.js
            stop_signal: SIGTERM
            kill_timeout: 5s
            restart: { min_uptime: 300ms }

        """;

    private async Task Deploy(string config, string version)
    {
        _bed.WriteVersion(version);
        JobWorker.WriteInto(_bed.Source, "idle");
        var result = await _bed.Cli("deploy", _bed.Source, "-c", config);
        output.WriteLine(result.All);
        Assert.True(result.ExitCode == 0, result.All);
    }

    private async Task<JsonElement[]> Instances(string config)
    {
        var status = await _bed.Cli("status", "--json", "-c", config);
        Assert.True(status.ExitCode == 0, status.All);
        return JsonDocument.Parse(status.Stdout).RootElement.GetProperty("agent").GetProperty("instances").EnumerateArray().ToArray();
    }

    private async Task<List<int>> Pids(string config, string process) =>
        (await Instances(config)).Where(i => i.GetProperty("process").GetString() == process)
            .Select(i => i.GetProperty("pid").GetInt32()).Order().ToList();

    private static void AllServed(IReadOnlyList<Sample> samples)
    {
        Assert.True(samples.Count > 20, $"{samples.Count} requests");
        Assert.True(samples.All(s => s.Status == 200), $"{samples.Count(s => s.Status != 200)} of {samples.Count} failed; first {samples.FirstOrDefault(s => s.Status != 200)}");
    }

    private async Task<(CliResult Result, IReadOnlyList<Sample> Samples)> UnderLoad(int port, params string[] args)
    {
        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 4, maxDuration: TimeSpan.FromMinutes(2));
        await Task.Delay(200);
        var result = await _bed.Cli(args);
        await Task.Delay(300);
        var samples = await load.StopAsync();
        output.WriteLine(result.All);
        return (result, samples);
    }

    [Fact]
    public async Task Restart_under_load_replaces_every_instance_with_no_failed_request_and_restart_worker_only_the_workers()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, processes: Worker);
        await Deploy(config, "1");
        var web = await Pids(config, "web");
        var worker = await Pids(config, "worker");

        var (restart, samples) = await UnderLoad(port, "restart", "-c", config);
        Assert.True(restart.ExitCode == 0, restart.All);
        Assert.Contains("restart: node release", restart.Stdout);
        AllServed(samples);
        var webAfter = await Pids(config, "web");
        var workerAfter = await Pids(config, "worker");
        Assert.Equal(2, webAfter.Count);
        Assert.Empty(webAfter.Intersect(web));
        Assert.Single(workerAfter);
        Assert.Empty(workerAfter.Intersect(worker));

        var (onlyWorker, _) = await UnderLoad(port, "restart", "worker", "--json", "-c", config);
        Assert.True(onlyWorker.ExitCode == 0, onlyWorker.All);
        var result = JsonDocument.Parse(onlyWorker.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.Equal("restart", result.GetProperty("command").GetString());
        Assert.Equal("live", result.GetProperty("outcome").GetString());
        Assert.Equal(webAfter, await Pids(config, "web"));
        Assert.Empty((await Pids(config, "worker")).Intersect(workerAfter));

        var unknown = await _bed.Cli("restart", "mailer", "-c", config);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("no such process type; it has web, worker", unknown.Stderr);
    }

    [Fact]
    public async Task A_restart_starts_the_new_instances_with_the_environment_as_it_is_now()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, processes: Worker);
        await Deploy(config, "1");
        var moved = _bed.Combine("journal-2.log");
        Config(port, processes: Worker, journal: moved);

        var restart = await _bed.Cli("restart", "worker", "-c", config);
        Assert.True(restart.ExitCode == 0, restart.All);
        // The new worker writes where the environment now says; the old one wrote where it said at the deploy.
        await Wait.UntilAsync(() => File.Exists(moved) && JobWorker.Read(moved).Any(), TimeSpan.FromSeconds(10), "the restarted worker's journal");
        // (status's pid is the exit-status wrapper's; the journal has node's own.)
        var pid = Assert.Single(JobWorker.Read(moved).Select(e => e.Pid).Distinct());
        Assert.DoesNotContain(JobWorker.Read(Journal), e => e.Pid == pid);
    }

    [Fact]
    public async Task A_restart_after_an_env_file_change_rolls_every_instance_onto_it_under_load_and_the_secret_stays_in_the_env_file()
    {
        var port = HealthServer.FreePort();
        var envFile = _bed.Combine("production.env");
        var oldSecret = "tok-old-" + Guid.NewGuid().ToString("N");
        var newSecret = "tok-new-" + Guid.NewGuid().ToString("N");
        File.WriteAllText(envFile, $"API_TOKEN={oldSecret}\n");
        var config = Config(port, processes: Worker);
        File.AppendAllText(config, $"\nenv_file: {envFile}\n");
        await Deploy(config, "1");
        var web = await Pids(config, "web");
        var release = (await Instances(config))[0].GetProperty("release").GetString()!;
        var releaseEnv = Path.Combine(_bed.Root, ".cutover", "env", release + ".env");
        Assert.Contains(oldSecret, File.ReadAllText(releaseEnv));

        File.WriteAllText(envFile, $"API_TOKEN={newSecret}\n");
        var (restart, samples) = await UnderLoad(port, "restart", "-c", config);
        Assert.True(restart.ExitCode == 0, restart.All);
        AllServed(samples);
        Assert.Contains($"environment changed (API_TOKEN): release {release}'s env file rewritten", restart.All);
        Assert.Contains(newSecret, File.ReadAllText(releaseEnv));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(releaseEnv));
        // Every instance is new and has the new value in its environment (read from the kernel, not from Cutover).
        var instances = await Instances(config);
        Assert.Empty((await Pids(config, "web")).Intersect(web));
        Assert.All(instances, i => Assert.Contains($"API_TOKEN={newSecret}", File.ReadAllText($"/proc/{i.GetProperty("pid").GetInt32()}/environ").Split('\0')));
        var history = File.ReadAllLines(Path.Combine(_bed.Root, ".cutover", "history.jsonl"))[^1];
        Assert.Contains("\"restart\"", history);
        Assert.Contains("API_TOKEN", history);
        // The secret: in the release's env file and nowhere else Cutover writes or prints.
        var status = await _bed.Cli("status", "--json", "-c", config);
        Assert.DoesNotContain(newSecret, restart.All + status.All);
        foreach (var file in Directory.EnumerateFiles(_bed.Root, "*", SearchOption.AllDirectories).Concat(Directory.EnumerateFiles(_bed.Home, "*", SearchOption.AllDirectories)))
            // Locks (flock'd by the agent) and the socket hold no text.
            if (file != releaseEnv && !file.EndsWith(".lock") && !file.EndsWith(".sock") && new FileInfo(file).Length < 10 << 20)
                Assert.False(File.ReadAllText(file).Contains(newSecret), $"{file} holds the secret");

        // A ${VAR} that is not set: exit 2, nothing restarted, the env file as it was.
        var pids = await Pids(config, "web");
        File.AppendAllText(config, "env:\n  EXTRA: ${CUTOVER_TEST_NOT_SET_VARIABLE}\n");
        var missing = await _bed.Cli("restart", "-c", config);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("CUTOVER_TEST_NOT_SET_VARIABLE", missing.Stderr);
        Assert.Equal(pids, await Pids(config, "web"));
        Assert.Contains(newSecret, File.ReadAllText(releaseEnv));
    }

    [Fact]
    public async Task A_restart_cancelled_by_sigint_exits_130_with_every_slot_served()
    {
        var port = HealthServer.FreePort();
        // A long monitor window per batch: SIGINT lands while the first new instance is being watched.
        var config = Config(port, web: 3, strategySection: "rolling:\n  monitor: 3s");
        await Deploy(config, "1");
        var web = await Pids(config, "web");

        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 4, maxDuration: TimeSpan.FromMinutes(2));
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var restart = _bed.Start(lines.Enqueue, "restart", "-c", config);
        await Wait.UntilAsync(() => lines.Any(l => l.Contains("node-0: pid")), TimeSpan.FromSeconds(30), "the first new instance ready");
        Cutover.Platform.LibC.Kill(restart.Id, 2);
        await restart.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        await Task.Delay(300);
        var samples = await load.StopAsync();
        output.WriteLine(string.Join("\n", lines));

        Assert.Equal(130, restart.ExitCode);
        AllServed(samples);
        var after = await Instances(config);
        Assert.Equal(3, after.Length);
        Assert.All(after, i => Assert.Equal("ready", i.GetProperty("state").GetString()));
        // Not every instance was replaced: the restart stopped where it was.
        Assert.NotEmpty((await Pids(config, "web")).Intersect(web));
    }

    [Fact]
    public async Task A_restart_whose_new_instance_cannot_start_leaves_the_running_ones_serving()
    {
        var port = HealthServer.FreePort();
        var config = Config(port);
        await Deploy(config, "1");
        var web = await Pids(config, "web");
        // What the restart's start needs is gone; the running instances loaded it long ago.
        File.Delete(Path.Combine(_bed.Root, "current", "server.js"));

        var (restart, samples) = await UnderLoad(port, "restart", "-c", config);
        Assert.Equal(1, restart.ExitCode);
        Assert.Contains("no instance was restarted", restart.Stderr);
        AllServed(samples);
        Assert.Equal(web, await Pids(config, "web"));
        Assert.All(await Instances(config), i => Assert.Equal("ready", i.GetProperty("state").GetString()));
    }

    [Fact]
    public async Task A_blue_green_restart_under_load_replaces_every_instance_with_no_failed_request()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, strategy: "blue-green", strategySection: "blue_green:\n  monitor: 0s");
        await Deploy(config, "1");
        var web = await Pids(config, "web");

        var (restart, samples) = await UnderLoad(port, "restart", "-c", config);
        Assert.True(restart.ExitCode == 0, restart.All);
        AllServed(samples);
        var after = await Pids(config, "web");
        Assert.Equal(2, after.Count);
        Assert.Empty(after.Intersect(web));
    }

    [Fact]
    public async Task Scale_up_and_down_under_load_has_no_failed_request()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, processes: Worker);
        await Deploy(config, "1");
        var web = await Pids(config, "web");

        var (up, upSamples) = await UnderLoad(port, "scale", "web=4", "worker=3", "-c", config);
        Assert.True(up.ExitCode == 0, up.All);
        AllServed(upSamples);
        var webUp = await Pids(config, "web");
        Assert.Equal(4, webUp.Count);
        Assert.Subset(webUp.ToHashSet(), web.ToHashSet()); // the running ones were left alone
        Assert.Equal(3, (await Pids(config, "worker")).Count);
        var status = await _bed.Cli("status", "-c", config);
        Assert.Contains("processes: web 4 (scaled; the config says 2), worker 3 (scaled; the config says 1)", status.Stdout);

        var (down, downSamples) = await UnderLoad(port, "scale", "web=1", "worker=0", "-c", config);
        Assert.True(down.ExitCode == 0, down.All);
        AllServed(downSamples);
        Assert.Equal([webUp[0]], await Pids(config, "web"));
        Assert.Empty(await Pids(config, "worker"));
        // The workers were asked to stop and said so, not killed.
        Assert.Equal(3, JobWorker.Read(Journal).Count(e => e.What == "sigterm"));
    }

    [Fact]
    public async Task A_bad_scale_is_refused_with_exit_2_and_changes_nothing()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, processes: Worker + """
              scheduler:
                command: node worker.js
                singleton: true

            """);
        await Deploy(config, "1");
        var before = (await Instances(config)).Select(i => i.GetProperty("pid").GetInt32()).Order().ToList();
        foreach (var (args, error) in new[]
                 {
                     ("mailer=2", "has no process type 'mailer'; it has web, worker, scheduler"),
                     ("scheduler=2", "scheduler is a singleton"),
                     ("web=0", "web needs at least 1 instance"),
                     ("web", "'web' is not TYPE=N"),
                     ("web=-1", "'web=-1' is not TYPE=N"),
                     ("web=2x", "'web=2x' is not TYPE=N"),
                 })
        {
            var refused = await _bed.Cli("scale", args, "-c", config);
            Assert.True(refused.ExitCode == 2, refused.All);
            Assert.Contains(error, refused.Stderr);
            Assert.Single(refused.Stderr.Trim().Split('\n'));
        }
        Assert.Equal(before, (await Instances(config)).Select(i => i.GetProperty("pid").GetInt32()).Order());
    }

    [Fact]
    public async Task A_scale_survives_an_agent_kill_and_a_deploy_with_the_same_config_and_goes_when_the_config_count_changes()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, processes: Worker);
        await Deploy(config, "1");
        var scaled = await _bed.Cli("scale", "web=3", "worker=2", "-c", config);
        Assert.True(scaled.ExitCode == 0, scaled.All);

        var agentPid = int.Parse(File.ReadAllText(Path.Combine(_bed.Home, "agent.pid")));
        Cutover.Platform.LibC.Kill(agentPid, 9);
        await Wait.UntilAsync(() => !Cutover.Platform.LibC.Kill(agentPid, 0), TimeSpan.FromSeconds(10), "the agent gone");
        using (var agent = _bed.Start(_ => { }, "agent"))
        {
            await Wait.UntilAsync(async () => (await _bed.Cli("status", "--json", "-c", config)) is { ExitCode: 0 } s
                && JsonDocument.Parse(s.Stdout).RootElement.GetProperty("agent") is { ValueKind: JsonValueKind.Object } view // null until the agent answers
                && view.GetProperty("instances").EnumerateArray().Count(i => i.GetProperty("state").GetString() == "ready") == 5,
                TimeSpan.FromSeconds(30), "the restarted agent's 3 web and 2 workers");
            Assert.Equal(3, (await Pids(config, "web")).Count);
            Assert.Equal(2, (await Pids(config, "worker")).Count);

            // The same config: the scale holds.
            await Deploy(config, "2");
            Assert.Equal(3, (await Pids(config, "web")).Count);
            Assert.Equal(2, (await Pids(config, "worker")).Count);
            Assert.All(await Instances(config), i => Assert.Equal("ready", i.GetProperty("state").GetString()));

            // The config's web count changes: it is followed, and web's scale forgotten; worker's count did not change, so it stays.
            config = Config(port, web: 4, processes: Worker);
            await Deploy(config, "3");
            Assert.Equal(4, (await Pids(config, "web")).Count);
            Assert.Equal(2, (await Pids(config, "worker")).Count);
            var status = await _bed.Cli("status", "-c", config);
            Assert.Contains("processes: web 4, worker 2 (scaled; the config says 1)", status.Stdout);
            var releases = (await Instances(config)).Select(i => i.GetProperty("release").GetString()).Distinct();
            Assert.Single(releases);
        }
    }

    [Fact]
    public async Task A_deploy_that_adds_a_type_and_changes_instances_applies_them_live()
    {
        var port = HealthServer.FreePort();
        var config = Config(port);
        await Deploy(config, "1");

        config = Config(port, web: 3, processes: Worker);
        _bed.WriteVersion("2");
        JobWorker.WriteInto(_bed.Source, "idle");
        var (deploy, samples) = await UnderLoad(port, "deploy", _bed.Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        AllServed(samples);
        var instances = await Instances(config);
        Assert.Equal(3, instances.Count(i => i.GetProperty("process").GetString() == "web"));
        Assert.Single(instances, i => i.GetProperty("process").GetString() == "worker");
        Assert.Single(instances.Select(i => i.GetProperty("release").GetString()).Distinct());

        // And back: the type removed (its worker asked to stop), web down to 1.
        config = Config(port, web: 1);
        _bed.WriteVersion("3");
        var (again, againSamples) = await UnderLoad(port, "deploy", _bed.Source, "-c", config);
        Assert.True(again.ExitCode == 0, again.All);
        AllServed(againSamples);
        instances = await Instances(config);
        Assert.Single(instances);
        Assert.Equal("web", instances[0].GetProperty("process").GetString());
        Assert.Contains(JobWorker.Read(Journal), e => e.What == "sigterm");
    }
}
