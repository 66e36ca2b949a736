using Cutover.Config;
using Cutover.Progress;
using Cutover.Rolling;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>The rolling knobs: parallelism, order, failure_action and max_failure_ratio, each under load.</summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class RollingOptionsTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _http.Dispose();
        _dir.Dispose();
    }

    private string Release(string version, string? behavior = null) => AppFactory.NodeRelease(_dir.Path, version, behavior);

    private async Task<(AppRuntime App, RecordingProgress Progress)> StartAsync(string rolling)
    {
        var config = ConfigLoader.Parse($"""
            app: opts
            strategy: rolling
            root: {_dir.Path}
            run:
              command: node server.js
              instances: 4
              ready: message
              ready_timeout: 5s
            proxy:
              listen: 127.0.0.1:{HealthServer.FreePort()}
              drain_timeout: 5s
            health:
              interval: 200ms
            rolling:
              monitor: 200ms
            {rolling}
            """, _dir.Combine("cutover.yml"));
        var app = await AppRuntime.CreateAsync(config, _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await app.StartAllAsync("v1", Release("1"), CancellationToken.None));
        return (app, new RecordingProgress());
    }

    private async Task<(RollingResult Result, int Failed)> DeployUnderLoadAsync(AppRuntime app, IDeployProgress progress, string release, string releaseDir)
    {
        await using var load = new LoadGenerator($"http://127.0.0.1:{app.Proxy.Listen.Port}/", connections: 8, maxDuration: TimeSpan.FromMinutes(1));
        await Task.Delay(200);
        var result = await new RollingUpdate(app, progress).RunAsync(release, releaseDir, CancellationToken.None);
        await Task.Delay(200);
        var samples = await load.StopAsync();
        return (result, samples.Count(s => s.Status != 200));
    }

    [Fact]
    public async Task Parallelism_two_replaces_in_two_batches()
    {
        var (app, progress) = await StartAsync("  parallelism: 2");
        await using var _ = app;
        var (result, failed) = await DeployUnderLoadAsync(app, progress, "v2", Release("2"));
        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(0, failed);
        Assert.Equal(["batch 1/2", "batch 2/2"], progress.Started);
        // Start-first: both new instances of a batch ready before the old ones drain, then the monitor window.
        Assert.Equal(["web 1/2 started", "web 1/2 ready", "web 1/2 drained", "web 1/2 monitored",
                      "web 2/2 started", "web 2/2 ready", "web 2/2 drained", "web 2/2 monitored"], progress.Batches);
        Assert.All(app.Slots, s => Assert.Equal("v2", s!.Spec.ReleaseId));
    }

    [Fact]
    public async Task Stop_first_frees_each_slot_before_refilling_it_without_failing_requests()
    {
        var (app, progress) = await StartAsync("  order: stop-first");
        await using var _ = app;
        var (result, failed) = await DeployUnderLoadAsync(app, progress, "v2", Release("2"));
        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(0, failed);
        Assert.Equal(["web 1/4 started", "web 1/4 drained", "web 1/4 ready", "web 1/4 monitored"], progress.Batches.Take(4));
        Assert.All(app.Slots, s => Assert.Equal("v2", s!.Spec.ReleaseId));
    }

    [Fact]
    public async Task Failure_action_continue_tries_every_instance_and_reports_each_failure()
    {
        var (app, progress) = await StartAsync("  failure_action: continue");
        await using var _ = app;
        var (result, failed) = await DeployUnderLoadAsync(app, progress, "v2", Release("2", "exit"));
        Assert.False(result.Succeeded);
        Assert.False(result.RolledBack);
        Assert.Equal(4, result.Failures.Count);
        Assert.Equal(0, failed);
        Assert.All(app.Slots, s => Assert.Equal("v1", s!.Spec.ReleaseId));
    }

    [Fact]
    public async Task Failure_action_pause_stops_at_the_first_failure()
    {
        var (app, progress) = await StartAsync("  failure_action: pause");
        await using var _ = app;
        var (result, failed) = await DeployUnderLoadAsync(app, progress, "v2", Release("2", "exit"));
        Assert.False(result.Succeeded);
        Assert.False(result.RolledBack);
        Assert.Single(result.Failures);
        Assert.Equal(["batch 1/4"], progress.Started);
        Assert.Contains(progress.Warnings, w => w.Contains("failure_action pause"));
        Assert.Equal(0, failed);
    }

    [Fact]
    public async Task Max_failure_ratio_tolerates_that_share_of_failed_instances()
    {
        var (app, progress) = await StartAsync("  max_failure_ratio: 0.25");
        await using var _ = app;
        var (result, failed) = await DeployUnderLoadAsync(app, progress, "v2", Release("2", "exit-instance-0"));
        Assert.True(result.Succeeded, result.Error);
        Assert.Single(result.Failures);
        Assert.Equal(0, failed);
        Assert.Equal("v1", app.Slots[0]!.Spec.ReleaseId);
        Assert.All(app.Slots.Skip(1), s => Assert.Equal("v2", s!.Spec.ReleaseId));
    }

    [Fact]
    public async Task A_failure_in_a_later_batch_rolls_the_replaced_instances_back()
    {
        var (app, progress) = await StartAsync("  failure_action: rollback");
        await using var _ = app;
        var (result, failed) = await DeployUnderLoadAsync(app, progress, "v2", Release("2", "exit-instance-2"));
        Assert.False(result.Succeeded);
        Assert.True(result.RolledBack);
        Assert.Equal(2, result.Replaced);
        Assert.Contains("opts-2", result.Error);
        Assert.Equal(0, failed);
        Assert.All(app.Slots, s => Assert.Equal("v1", s!.Spec.ReleaseId));
        Assert.Equal(["web 3/4 failed", "web 3/4 rolled_back"], progress.Batches.TakeLast(2));
    }

    public sealed class RecordingProgress : IDeployProgress
    {
        public List<string> Started { get; } = [];
        public List<string> Warnings { get; } = [];
        public void PhaseStarted(string phase) { lock (Started) Started.Add(phase); }
        public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) { }
        public void PhaseFailed(string phase, TimeSpan elapsed, string error) { }
        public void Output(string phase, string line) { }
        public void Info(string message) { }
        public void Warning(string message) { lock (Warnings) Warnings.Add(message); }
        /// <summary>Each batch step as "web 1/2 ready", in the order reported.</summary>
        public List<string> Batches { get; } = [];
        public void Batch(string process, int number, int of, BatchStep step) { lock (Batches) Batches.Add($"{process} {number}/{of} {System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(step.ToString())}"); }
    }
}
