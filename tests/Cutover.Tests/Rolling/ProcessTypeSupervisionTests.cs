using Cutover.Config;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// Process types (`processes:`) under the supervisor, without an agent: started beside web without a port or a place in
/// the proxy, restarted after a crash and above max_memory (never two of a singleton), and left out by host roles.
/// Real Node workers write their own journal (<see cref="JobWorker"/>).
/// </summary>
[Collection(Serial.Name)]
public class ProcessTypeSupervisionTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();
    private string Journal => _dir.Combine("journal.log");

    public void Dispose()
    {
        _http.Dispose();
        _dir.Dispose();
    }

    private CutoverConfig Config(string processes, int port) => ConfigLoader.Parse($"""
        app: sup
        strategy: rolling
        root: {_dir.Path}
        run:
          command: node server.js
          instances: 1
          ready: message
          ready_timeout: 5s
          env:
            JOB_LOG: {Journal}
        proxy:
          listen: 127.0.0.1:{port}
        health:
          interval: 200ms
        processes:
        {processes}
        """, _dir.Combine("cutover.yml"));

    private async Task<AppRuntime> StartAsync(string processes, string mode, IReadOnlyList<string>? roles = null, int? port = null)
    {
        var release = AppFactory.NodeRelease(_dir.Path, "1");
        JobWorker.WriteInto(release, mode);
        var app = await AppRuntime.CreateAsync(Config(processes, port ?? HealthServer.FreePort()), _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None, roles);
        Assert.Null(await app.StartAllAsync("r1", release, CancellationToken.None));
        return app;
    }

    [Fact]
    public async Task Workers_run_beside_web_without_a_port_or_the_proxy_and_are_restarted_after_a_crash()
    {
        await using var app = await StartAsync("""
              worker:
                command: node worker.js
                instances: 2
                ready: message
                restart: { min_uptime: 300ms }
            """, "idle");
        var workers = app.Groups.Single(g => g.Name == "worker");
        Assert.Equal(["sup-worker-0", "sup-worker-1"], workers.Slots.Select(s => s!.Spec.Id));
        Assert.All(workers.Slots, s => Assert.Equal(InstanceState.Ready, s!.State));
        Assert.All(workers.Slots, s => Assert.Null(s!.Backend));
        Assert.Equal("sup-0", app.Slots.Single()!.Spec.Id);
        // The web process's environment (JOB_LOG) reaches them; its port variable does not.
        var starts = JobWorker.Read(Journal).Where(e => e.What.StartsWith("start")).ToList();
        Assert.Equal(2, starts.Count);
        Assert.All(starts, e => Assert.Equal("start port=none process=worker", e.What));
        // Each journal pid is the node process inside its instance's process group (the instance pid is the group leader).
        Assert.Equal(workers.Slots.Select(s => s!.Pid!.Value).Order(), starts.Select(e => Cutover.Platform.ProcStat.Read(e.Pid)!.Value.ProcessGroup).Order());
        // Only web is in the proxy.
        Assert.StartsWith("hello from 1", await _http.GetStringAsync($"http://127.0.0.1:{app.Proxy.Listen.Port}/"));
        Assert.Single(app.Proxy.Pool.Backends);

        var before = workers.Slots.Select(s => s!.Pid).ToArray();
        File.WriteAllText(Journal + ".crash", "");
        Assert.True(await Wait.WithinAsync(() => workers.Slots.Any(s => s!.Restarts == 1 && s.State == InstanceState.Ready), TimeSpan.FromSeconds(15)),
            File.ReadAllText(app.Log.CurrentPath));
        var restarted = workers.Slots.Single(s => s!.Restarts == 1)!;
        Assert.DoesNotContain(restarted.Pid, before);
        Assert.Contains($"sup-worker-{restarted.Spec.Index}", File.ReadAllText(app.Log.CurrentPath));
        Assert.Contains("exited with code 3", File.ReadAllText(app.Log.CurrentPath));
    }

    [Fact]
    public async Task A_worker_that_never_says_ready_fails_the_start_and_nothing_of_the_app_keeps_running()
    {
        var release = AppFactory.NodeRelease(_dir.Path, "1");
        JobWorker.WriteInto(release, "idle");
        await using var app = await AppRuntime.CreateAsync(Config("""
              worker:
                command: node worker.js
                ready: notify
                ready_timeout: 1s
            """, HealthServer.FreePort()), _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        var error = await app.StartAllAsync("r1", release, CancellationToken.None);
        Assert.NotNull(error);
        Assert.Contains("instance sup-worker-0: not ready within 1s: it never sent READY=1 to NOTIFY_SOCKET", error);
        Assert.True(app.IsEmpty);
        Assert.Empty(app.Running);
    }

    [Fact]
    public async Task A_singleton_above_max_memory_is_stopped_before_its_replacement_starts()
    {
        await using var app = await StartAsync("""
              scheduler:
                command: node worker.js
                singleton: true
                stop_signal: SIGTERM
                max_memory: 120M
                restart: { min_uptime: 300ms }
            """, "leak");
        var scheduler = app.Groups.Single(g => g.Name == "scheduler").Slots.Single()!;
        var first = scheduler.Pid;
        Assert.True(await Wait.WithinAsync(() => scheduler.Pid != first && scheduler.State == InstanceState.Ready, TimeSpan.FromSeconds(20)),
            File.ReadAllText(app.Log.CurrentPath));
        await Task.Delay(300);
        Assert.Contains("above max_memory", File.ReadAllText(app.Log.CurrentPath));
        var journal = JobWorker.Read(Journal);
        Assert.True(journal.Any(e => e.What == "sigterm"), File.ReadAllText(app.Log.CurrentPath)); // its stop_signal, not only SIGKILL
        Assert.Empty(JobWorker.Overlaps(journal));
        Assert.Equal(2, journal.Select(e => e.Pid).Distinct().Count());
    }

    [Fact]
    public async Task A_host_without_the_web_role_runs_no_web_instance_and_routes_nothing()
    {
        var port = HealthServer.FreePort();
        await using var app = await StartAsync("""
              worker:
                command: node worker.js
                roles: [worker]
              mailer:
                command: node worker.js
                roles: [mail]
            """, "idle", roles: ["worker"], port: port);
        Assert.Empty(app.Slots);
        Assert.Equal(["web", "worker"], app.Groups.Select(g => g.Name));
        Assert.Equal(InstanceState.Ready, app.Groups[1].Slots.Single()!.State);
        Assert.Single(JobWorker.Read(Journal), e => e.What.StartsWith("start"));
        // No route on any listener: nothing listens on proxy.listen at all.
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await Assert.ThrowsAnyAsync<System.Net.Sockets.SocketException>(async () => await socket.ConnectAsync(System.Net.IPAddress.Loopback, port));
    }

    [Fact]
    public async Task A_host_with_the_web_role_only_runs_web_and_no_process_type_of_another_role()
    {
        await using var app = await StartAsync("""
              worker:
                command: node worker.js
                roles: [worker]
            """, "idle", roles: ["web"]);
        Assert.Equal(["web"], app.Groups.Select(g => g.Name));
        Assert.Single(app.Slots);
        Assert.Empty(JobWorker.Read(Journal));
    }
}
