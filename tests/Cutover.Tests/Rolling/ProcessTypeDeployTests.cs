using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// Process types through the real CLI and agent: a job in progress finishes across a deploy, a worker that cannot start
/// fails the deploy with everything left on the old release, and a singleton never runs twice across a deploy, a
/// rollback, a crash and an agent SIGKILL + restart. Real Node workers write their own journal (<see cref="JobWorker"/>).
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class ProcessTypeDeployTests(ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _bed = new();
    private string Journal => _bed.Combine("journal.log");

    public void Dispose() => _bed.Dispose();

    private string Config(int port, string processes)
    {
        var path = _bed.Combine("cutover.yml");
        File.WriteAllText(path, $"""
            app: node
            strategy: rolling
            root: {_bed.Root}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 5s
              env:
                JOB_LOG: {Journal}
            proxy:
              listen: 127.0.0.1:{port}
              drain_timeout: 5s
            health:
              interval: 200ms
            rolling:
              monitor: 200ms
            processes:
            {processes}
            """);
        return path;
    }

    private void WriteVersion(string version, string workerMode)
    {
        _bed.WriteVersion(version);
        JobWorker.WriteInto(_bed.Source, workerMode);
    }

    private async Task Deploy(string config, string version, string workerMode)
    {
        WriteVersion(version, workerMode);
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

    [Fact]
    public async Task A_five_second_job_in_progress_completes_across_a_deploy()
    {
        var config = Config(HealthServer.FreePort(), """
              worker:
                command: node worker.js
                stop_signal: SIGTERM
                kill_timeout: 10s
                restart: { min_uptime: 300ms }
            """);
        await Deploy(config, "1", "job");
        await Wait.UntilAsync(() => JobWorker.Read(Journal).Any(e => e.What == "job-start"), TimeSpan.FromSeconds(10), "the first job");
        await Task.Delay(1000); // well into its 5 seconds

        await Deploy(config, "2", "job");

        var journal = JobWorker.Read(Journal);
        var old = journal.First(e => e.Version == "1").Pid;
        var mine = journal.Where(e => e.Pid == old).ToList();
        output.WriteLine(string.Join("\n", mine.Where(e => e.What != "alive").Select(e => $"{e.Line} {e.Ms} {e.What}")));
        var sigterm = Assert.Single(mine, e => e.What == "sigterm");
        var lastStart = mine.Last(e => e.What == "job-start");
        Assert.True(lastStart.Line < sigterm.Line, "the job in hand began before SIGTERM");
        var done = Assert.Single(mine, e => e.What == "job-done" && e.Line > lastStart.Line);
        // Node's timers and Date.now() may differ by a millisecond; a job cut short by SIGKILL would have no job-done at all.
        Assert.True(done.Ms - lastStart.Ms >= 4950, $"the job took {done.Ms - lastStart.Ms} ms");
        Assert.Equal("exit", mine[^1].What);
        // The worker of release 2 runs, shown by status with its process type and no port.
        var worker = Assert.Single(await Instances(config), i => i.GetProperty("process").GetString() == "worker");
        Assert.Equal("node-worker-0", worker.GetProperty("id").GetString());
        Assert.Equal(JsonValueKind.Null, worker.GetProperty("port").ValueKind);
        Assert.Contains(journal, e => e.Version == "2" && e.What.StartsWith("start"));
        var text = (await _bed.Cli("status", "-c", config)).Stdout;
        Assert.Contains("node-worker-0", text);
        // Its own log lines, by process type.
        var logs = await _bed.Cli("logs", "-c", config, "--process", "worker", "-n", "1000");
        Assert.True(logs.ExitCode == 0, logs.All);
        Assert.Contains("node-worker-0", logs.Stdout);
        Assert.DoesNotContain(" node-0 ", logs.Stdout);
        var unknown = await _bed.Cli("logs", "-c", config, "--process", "mailer");
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("--process: no process type 'mailer'; this app's are web, worker", unknown.Stderr);
    }

    [Fact]
    public async Task A_worker_that_fails_to_start_fails_the_deploy_and_everything_stays_on_the_old_release()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, """
              worker:
                command: node worker.js
                instances: 2
                restart: { min_uptime: 1s }
            """);
        await Deploy(config, "1", "idle");
        var before = await Instances(config);
        var workerPids = before.Where(i => i.GetProperty("process").GetString() == "worker").Select(i => i.GetProperty("pid").GetInt32()).Order().ToList();
        Assert.Equal(2, workerPids.Count);

        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 4, maxDuration: TimeSpan.FromMinutes(2));
        WriteVersion("2", "fail");
        var failed = await _bed.Cli("deploy", _bed.Source, "-c", config);
        await Task.Delay(300);
        var samples = await load.StopAsync();
        output.WriteLine(failed.All);

        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("instance node-worker-0", failed.All);
        Assert.Contains("refusing to start", failed.All);
        Assert.True(samples.Count > 20, $"{samples.Count} requests");
        Assert.True(samples.All(s => s.Status == 200), $"{samples.Count(s => s.Status != 200)} of {samples.Count} failed; first {samples.FirstOrDefault(s => s.Status != 200)}");
        var after = await Instances(config);
        Assert.Equal(workerPids, after.Where(i => i.GetProperty("process").GetString() == "worker").Select(i => i.GetProperty("pid").GetInt32()).Order());
        var liveRelease = before[0].GetProperty("release").GetString();
        Assert.All(after, i => Assert.Equal(liveRelease, i.GetProperty("release").GetString()));
        Assert.All(after, i => Assert.Equal("ready", i.GetProperty("state").GetString()));
        using var http = new HttpClient();
        Assert.StartsWith("hello from 1", await http.GetStringAsync($"http://127.0.0.1:{port}/"));
    }

    [Fact]
    public async Task A_deploy_adding_a_type_that_cannot_start_ends_with_the_old_release_serving_everything()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, """
              worker:
                command: node worker.js
                restart: { min_uptime: 300ms }
            """);
        await Deploy(config, "1", "idle");
        var before = await Instances(config);
        var liveRelease = before[0].GetProperty("release").GetString();

        // Release 2 adds a type whose command fails: the web and worker instances move first, then the resize fails.
        Config(port, """
              worker:
                command: node worker.js
                restart: { min_uptime: 300ms }
              mailer:
                command: exit 3
                restart: { min_uptime: 1s, max_restarts: 1 }
            """);
        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 4, maxDuration: TimeSpan.FromMinutes(2));
        WriteVersion("2", "idle");
        var failed = await _bed.Cli("deploy", _bed.Source, "-c", config);
        await Task.Delay(300);
        var samples = await load.StopAsync();
        output.WriteLine(failed.All);

        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("changing the process types and counts failed", failed.All);
        Assert.Contains($"every instance is back on release {liveRelease}", failed.All);
        Assert.True(samples.Count > 20, $"{samples.Count} requests");
        Assert.True(samples.All(s => s.Status == 200), $"{samples.Count(s => s.Status != 200)} of {samples.Count} failed; first {samples.FirstOrDefault(s => s.Status != 200)}");
        var after = await Instances(config);
        Assert.Equal(3, after.Length);
        Assert.DoesNotContain(after, i => i.GetProperty("process").GetString() == "mailer");
        Assert.All(after, i => Assert.Equal(liveRelease, i.GetProperty("release").GetString()));
        Assert.All(after, i => Assert.Equal("ready", i.GetProperty("state").GetString()));
        var status = await _bed.Cli("status", "--json", "-c", config);
        Assert.Equal(liveRelease, JsonDocument.Parse(status.Stdout).RootElement.GetProperty("current").GetProperty("id").GetString());
        using var http = new HttpClient();
        Assert.StartsWith("hello from 1", await http.GetStringAsync($"http://127.0.0.1:{port}/"));
    }

    [Fact]
    public async Task A_singleton_never_runs_twice_across_a_deploy_a_rollback_a_crash_and_an_agent_kill()
    {
        var config = Config(HealthServer.FreePort(), """
              scheduler:
                command: node worker.js
                singleton: true
                stop_signal: SIGTERM
                kill_timeout: 5s
                restart: { min_uptime: 300ms }
            """);
        await Deploy(config, "1", "idle");
        await Deploy(config, "2", "idle");
        var rollback = await _bed.Cli("rollback", "-c", config);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        int Lives() => JobWorker.Read(Journal).Select(e => e.Pid).Distinct().Count();
        Assert.Equal(3, Lives());

        File.WriteAllText(Journal + ".crash", "");
        await Wait.UntilAsync(() => Lives() == 4, TimeSpan.FromSeconds(15), "the scheduler restarted after its crash");

        var agentPid = int.Parse(File.ReadAllText(Path.Combine(_bed.Home, "agent.pid")));
        Cutover.Platform.LibC.Kill(agentPid, 9);
        var lines = new List<string>();
        using var agent = _bed.Start(line => { lock (lines) lines.Add(line); }, "agent");
        await Wait.UntilAsync(() => Lives() == 5, TimeSpan.FromSeconds(30), "the restarted agent's scheduler");
        await Task.Delay(500);

        var journal = JobWorker.Read(Journal);
        output.WriteLine(string.Join("\n", journal.Where(e => e.What != "alive").Select(e => $"{e.Line} {e.Ms} {e.Version}:{e.Pid} {e.What}")));
        Assert.Empty(JobWorker.Overlaps(journal));
        Assert.Equal(5, journal.Select(e => e.Pid).Distinct().Count());
        // Deploy, rollback: the old one was asked to stop (SIGTERM) and finished before the next began.
        Assert.True(journal.Count(e => e.What == "sigterm") >= 2);
        lock (lines) Assert.Contains(lines, l => l.Contains("left running by a previous agent"));
    }

    [Fact]
    public async Task An_activation_with_roles_without_web_runs_no_web_instance_and_no_route_even_after_an_agent_restart()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, """
              worker:
                command: node worker.js
                roles: [worker]
              mailer:
                command: node worker.js
                roles: [mail]
            """);
        // A release as a fleet host's session stages it; the roles are what the fleet engineer's CLI will pass.
        var release = _bed.Combine("release-1");
        WriteVersion("1", "idle");
        AppFactory.CopyTree(_bed.Source, release);
        var lines = new List<string>();
        using (var agent = _bed.Start(line => { lock (lines) lines.Add(line); }, "agent"))
        {
            using var client = new Cutover.Agent.AgentClient(new Cutover.Agent.AgentHome(_bed.Home));
            await Wait.UntilAsync(() => client.IsRunningAsync(CancellationToken.None), TimeSpan.FromSeconds(30), "the agent");
            var result = await client.ActivateAsync(config, "node", "r1", release, new Cutover.Progress.SilentProgress(), CancellationToken.None, roles: ["worker"]);
            Assert.True(result.Succeeded, result.Error);
            await AssertOnlyTheWorkerAsync(client);
            AgentProcess.Stop(_bed.Home, 15);
        }
        Assert.Contains("\"worker\"", File.ReadAllText(Path.Combine(_bed.Home, "state.json")));
        using (var agent = _bed.Start(line => { lock (lines) lines.Add(line); }, "agent"))
        {
            using var client = new Cutover.Agent.AgentClient(new Cutover.Agent.AgentHome(_bed.Home));
            await Wait.UntilAsync(() => client.IsRunningAsync(CancellationToken.None), TimeSpan.FromSeconds(30), "the restarted agent");
            await AssertOnlyTheWorkerAsync(client);
        }

        async Task AssertOnlyTheWorkerAsync(Cutover.Agent.AgentClient client)
        {
            var view = Assert.Single(await client.AppsAsync(CancellationToken.None));
            var instance = Assert.Single(view.Instances);
            Assert.Equal(("node-worker-0", "worker", "ready"), (instance.Id, instance.Process, instance.State));
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(async () => await socket.ConnectAsync(System.Net.IPAddress.Loopback, port));
        }
    }
}
