using Cutover.BlueGreen;
using Cutover.Config;
using Cutover.Progress;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// Blue-green with process types, driven directly (the agent runs the same switch): the new release's workers start
/// after the switch and the old ones stop; a worker that cannot start switches traffic back and leaves the old worker
/// running; a switch back to the warm set puts the workers on its release too.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class ProcessTypeBlueGreenTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();
    private readonly WarmSetKeeper _warm = new();
    private AppRuntime _app = null!;
    private string Journal => _dir.Combine("journal.log");

    /// <summary>Every phase event in the order reported.</summary>
    private sealed class OrderedProgress : IDeployProgress
    {
        public List<string> Events { get; } = [];
        public void PhaseStarted(string phase) { lock (Events) Events.Add("started " + phase); }
        public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) { lock (Events) Events.Add("completed " + phase); }
        public void PhaseFailed(string phase, TimeSpan elapsed, string error) { lock (Events) Events.Add("failed " + phase); }
        public void Output(string phase, string line) { }
        public void Info(string message) { }
        public void Warning(string message) { lock (Events) Events.Add("warning " + message); }
        public void Batch(string process, int number, int of, Cutover.Progress.BatchStep step) { }
    }

    private string Release(string version, string mode)
    {
        var dir = AppFactory.NodeRelease(_dir.Path, version);
        JobWorker.WriteInto(dir, mode);
        return dir;
    }

    public async Task InitializeAsync()
    {
        var config = ConfigLoader.Parse($"""
            app: bg
            strategy: blue-green
            root: {_dir.Path}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 5s
              env:
                JOB_LOG: {Journal}
            proxy:
              listen: 127.0.0.1:{HealthServer.FreePort()}
              drain_timeout: 5s
            blue_green:
              keep_previous: 10m
              monitor: 300ms
            processes:
              worker:
                command: node worker.js
                stop_signal: SIGTERM
                restart: {"{"} min_uptime: 1s {"}"}
            """, _dir.Combine("cutover.yml"));
        _app = await AppRuntime.CreateAsync(config, _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await _app.StartAllAsync("v1", Release("1", "idle"), CancellationToken.None));
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _http.Dispose();
        _dir.Dispose();
    }

    private ManagedInstance Worker => _app.Groups.Single(g => g.Name == "worker").Slots.Single()!;

    [Fact]
    public async Task Workers_of_the_new_set_start_after_the_switch_and_a_failed_one_switches_back()
    {
        var firstWorker = Worker.Pid;
        var progress = new OrderedProgress();
        Assert.Null(await new BlueGreenSwitch(_app, _warm, progress).RunAsync("v2", Release("2", "idle"), CancellationToken.None));
        Assert.True(progress.Events.IndexOf("completed switch") < progress.Events.IndexOf("started processes"), string.Join(", ", progress.Events));
        Assert.Equal("v2", Worker.Spec.ReleaseId);
        Assert.NotEqual(firstWorker, Worker.Pid);
        var journal = JobWorker.Read(Journal);
        var old = journal.First(e => e.Version == "1").Pid;
        Assert.Equal(["sigterm", "exit"], journal.Where(e => e.Pid == old && e.What is "sigterm" or "exit").Select(e => e.What));
        Assert.All(_app.Slots, s => Assert.Equal("v2", s!.Spec.ReleaseId));

        // Release 3's worker refuses to start: traffic back on release 2, whose worker never stopped.
        var v2Worker = Worker.Pid;
        var failed = new OrderedProgress();
        var error = await new BlueGreenSwitch(_app, _warm, failed).RunAsync("v3", Release("3", "fail"), CancellationToken.None);
        Assert.True(error is not null, string.Join(", ", failed.Events) + "\n" + File.ReadAllText(_app.Log.CurrentPath));
        Assert.Contains("instance bg-worker-0 of release v3", error);
        Assert.Contains("switched back to release v2", error);
        Assert.Equal(v2Worker, Worker.Pid);
        Assert.All(_app.Slots, s => Assert.Equal("v2", s!.Spec.ReleaseId));
        Assert.Equal("v2", _app.ReleaseId);
        Assert.StartsWith("hello from 2", await _http.GetStringAsync($"http://127.0.0.1:{_app.Proxy.Listen.Port}/"));

        // Back to the warm set of release 1: a switch for web, and the worker follows.
        Assert.Null(await new BlueGreenSwitch(_app, _warm, new SilentProgress()).RunAsync("v1", Release("1", "idle"), CancellationToken.None));
        Assert.Equal("v1", Worker.Spec.ReleaseId);
        Assert.StartsWith("hello from 1", await _http.GetStringAsync($"http://127.0.0.1:{_app.Proxy.Listen.Port}/"));
    }
}
