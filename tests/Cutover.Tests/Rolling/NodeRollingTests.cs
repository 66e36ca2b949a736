using Cutover.Config;
using Cutover.Progress;
using Cutover.Rolling;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// The classic guide's Node app (examples/node-app) at 4 instances behind Cutover's proxy, under continuous
/// keep-alive load, driven by the rolling update directly (the agent's CLI path is tested separately).
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class NodeRollingTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();
    private AppRuntime _app = null!;


    private string Release(string version, string? behavior = null) => AppFactory.NodeRelease(_dir.Path, version, behavior);

    // monitor 100 ms: long enough to run the window on every batch, short enough that twenty deploys of four
    // instances do not spend most of their time in it (the failure it catches has its own case, at 4 s).
    private CutoverConfig Config(string monitor = "100ms", int instances = 4, string drain = "10s", string readyTimeout = "5s") => ConfigLoader.Parse($"""
        app: node
        strategy: rolling
        root: {_dir.Path}
        run:
          command: node server.js
          instances: {instances}
          ready: message
          ready_timeout: {readyTimeout}
          kill_timeout: 3s
        proxy:
          listen: 127.0.0.1:{HealthServer.FreePort()}
          drain_timeout: {drain}
        health:
          path: /health
          interval: 200ms
          retries: 2
        rolling:
          parallelism: 1
          monitor: {monitor}
        """, _dir.Combine("cutover.yml"));

    public async Task InitializeAsync()
    {
        _app = await AppRuntime.CreateAsync(Config(), _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        var problem = await _app.StartAllAsync("v1", Release("1"), CancellationToken.None);
        Assert.Null(problem);
    }

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _http.Dispose();
        _dir.Dispose();
    }

    private async Task RestartAppAsync(CutoverConfig config)
    {
        await _app.DisposeAsync();
        _app = await AppRuntime.CreateAsync(config, _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await _app.StartAllAsync("v1", Release("1"), CancellationToken.None));
    }

    private Task<RollingResult> DeployAsync(string version) =>
        new RollingUpdate(_app, new SilentProgress()).RunAsync("v" + version, Release(version), CancellationToken.None);

    [Fact]
    public async Task Five_second_requests_started_before_a_deploy_all_complete()
    {
        await RestartAppAsync(Config(instances: 2, drain: "15s"));
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var slow = Enumerable.Range(0, 6).Select(_ => client.GetAsync(Url + "slow")).ToArray();
        await Wait.UntilAsync(() => _app.Proxy.Pool.Backends.Sum(b => b.InFlight) == 6, TimeSpan.FromSeconds(10), "the six slow requests to be in flight at the old instances");
        var result = await DeployAsync("2");
        Assert.True(result.Succeeded, result.Error);
        foreach (var response in await Task.WhenAll(slow))
        {
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith("hello from 1 (slow", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task A_websocket_open_across_a_deploy_is_closed_at_drain_timeout_not_before()
    {
        await RestartAppAsync(Config(instances: 1, drain: "3s", monitor: "0s"));
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{_app.Proxy.Listen.Port}/socket"), CancellationToken.None);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var receive = Task.Run(async () =>
        {
            try { await socket.ReceiveAsync(new byte[16], CancellationToken.None); } catch (System.Net.WebSockets.WebSocketException) { }
            return clock.Elapsed;
        });
        var deploy = DeployAsync("2");
        var closedAfter = await receive.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True((await deploy).Succeeded);
        output.WriteLine($"websocket closed {closedAfter.TotalSeconds:0.00}s after the deploy began");
        Assert.True(closedAfter >= TimeSpan.FromSeconds(3), $"closed after {closedAfter.TotalSeconds:0.00}s, before drain_timeout");
        Assert.True(closedAfter < TimeSpan.FromSeconds(10), $"still open {closedAfter.TotalSeconds:0.00}s after the deploy began");
    }

    [Fact]
    public async Task An_instance_killed_with_sigkill_is_replaced_and_later_requests_do_not_fail()
    {
        await using var load = new LoadGenerator(Url, connections: 8, maxDuration: TimeSpan.FromMinutes(1));
        await Task.Delay(500);
        var victim = _app.Slots[0]!;
        var pid = victim.Pid!.Value;
        var killedAt = load.NowMs;
        Cutover.Platform.LibC.Kill(pid, 9);
        await Wait.WithinAsync(() => victim.State == InstanceState.Ready && victim.Pid != pid, TimeSpan.FromSeconds(20)); // asserted below
        await Task.Delay(500); // load on the replacement
        var samples = await load.StopAsync();

        Assert.Equal(InstanceState.Ready, victim.State);
        Assert.NotEqual(pid, victim.Pid);
        Assert.Equal(1, victim.Restarts);
        var after = samples.Where(s => s.StartMs > killedAt).ToList();
        Assert.True(after.Count > 100);
        Assert.True(after.All(s => s.Status == 200), $"{after.Count(s => s.Status != 200)} requests after the kill failed: {after.FirstOrDefault(s => s.Status != 200)}");
    }

    private string Url => $"http://127.0.0.1:{_app.Proxy.Listen.Port}/";

    [Fact]
    public async Task Twenty_rolling_deploys_under_load_fail_no_request_and_end_on_the_new_version()
    {
        await using var load = new LoadGenerator(Url, connections: 16, maxDuration: TimeSpan.FromMinutes(3));
        var steps = new List<(string Version, double StartMs, double DoneMs)>();
        for (var i = 0; i < 20; i++)
        {
            var version = i % 2 == 0 ? "2" : "1";
            var start = load.NowMs;
            var result = await new RollingUpdate(_app, new SilentProgress()).RunAsync("v" + version, Release(version), CancellationToken.None);
            Assert.True(result.Succeeded, $"deploy {i + 1}: {result.Error}");
            steps.Add((version, start, load.NowMs));
            await Task.Delay(150); // requests between two deploys (checked below): 16 busy connections answer dozens in this time
        }
        var stop = load.NowMs;
        var samples = await load.StopAsync();

        var failed = samples.Where(s => s.Status != 200).ToList();
        output.WriteLine($"{samples.Count} requests, {failed.Count} failed, proxy errors {_app.Proxy.Failed}");
        Assert.True(failed.Count == 0, $"{failed.Count} of {samples.Count} failed; first: {failed.FirstOrDefault()}");
        Assert.True(samples.Count > 2000, $"only {samples.Count} requests");
        for (var i = 0; i < steps.Count; i++)
        {
            var until = i + 1 < steps.Count ? steps[i + 1].StartMs : stop;
            var after = samples.Where(s => s.StartMs >= steps[i].DoneMs && s.EndMs <= until).ToList();
            Assert.True(after.Count > 0, $"deploy {i + 1}: no requests between it and the next");
            var stale = after.Where(s => s.Version != steps[i].Version).ToList();
            Assert.True(stale.Count == 0, $"deploy {i + 1} to {steps[i].Version}: {stale.Count} later requests answered by {stale.FirstOrDefault().Version}");
        }
    }

    [Theory]
    [InlineData("exit", "exited with code 3 before it was ready (stderr: refusing to start (BEHAVIOR=exit))")]
    [InlineData("never-ready", "never called process.send('ready')")]
    [InlineData("unhealthy-after-2s", "failed within monitor")]
    [InlineData("ignore-port", "nothing listens on")]
    public async Task A_broken_version_fails_with_its_reason_and_the_old_one_keeps_serving(string behavior, string reason)
    {
        if (behavior == "unhealthy-after-2s") await RestartAppAsync(Config(monitor: "4s"));
        // These two fail only when ready_timeout runs out: 2 s of it instead of 5 s.
        if (behavior is "never-ready" or "ignore-port") await RestartAppAsync(Config(readyTimeout: "2s"));
        await using var load = new LoadGenerator(Url, connections: 8, maxDuration: TimeSpan.FromMinutes(1));
        await Task.Delay(200);
        var result = await new RollingUpdate(_app, new SilentProgress()).RunAsync("v2", Release("2", behavior), CancellationToken.None);
        var doneMs = load.NowMs;
        await Task.Delay(500);
        var samples = await load.StopAsync();

        Assert.False(result.Succeeded);
        Assert.Contains(reason, result.Error);
        Assert.All(_app.Slots, s => Assert.Equal("v1", s!.Spec.ReleaseId));
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.All(samples.Where(s => s.StartMs > doneMs), s => Assert.Equal("1", s.Version));
    }
}
