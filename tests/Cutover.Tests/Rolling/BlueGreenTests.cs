using System.Diagnostics;
using Cutover.BlueGreen;
using Cutover.Config;
using Cutover.Progress;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>Blue-green in Cutover's proxy, driven directly (the agent path is the same activation).</summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class BlueGreenTests(ITestOutputHelper output) : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();
    private AppRuntime _app = null!;
    /// <summary>Blue-green's warm set between switches, as the agent keeps one per app.</summary>
    private WarmSetKeeper _warm = new();

    private string Release(string version, string? behavior = null) => AppFactory.NodeRelease(_dir.Path, version, behavior);

    public Task InitializeAsync() => StartAsync(Config());

    private async Task StartAsync(CutoverConfig config)
    {
        _app = await AppRuntime.CreateAsync(config, _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await _app.StartAllAsync("v1", Release("1"), CancellationToken.None));
    }

    private CutoverConfig Config(string monitor = "500ms", string readyTimeout = "5s") => ConfigLoader.Parse($"""
            app: bg
            strategy: blue-green
            root: {_dir.Path}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: {readyTimeout}
            proxy:
              listen: 127.0.0.1:{HealthServer.FreePort()}
              drain_timeout: 5s
            health:
              interval: 200ms
            blue_green:
              keep_previous: 10m
              monitor: {monitor}
              max_error_rate: 1%
            router: builtin
            """, _dir.Combine("cutover.yml"));

    public async Task DisposeAsync()
    {
        await _app.DisposeAsync();
        _http.Dispose();
        _dir.Dispose();
    }

    private string Url => $"http://127.0.0.1:{_app.Proxy.Listen.Port}/";

    private Task<string?> Switch(string version, string? behavior = null) =>
        new BlueGreenSwitch(_app, _warm, new SilentProgress()).RunAsync("v" + version, Release(version, behavior), CancellationToken.None);

    [Fact]
    public async Task Twenty_deploys_and_ten_rollbacks_fail_no_request_and_each_switch_is_immediate()
    {
        // A 100 ms monitor window: twenty deploys spent 10 s in the 500 ms one, which the error-rate test needs and
        // this one does not (its green sets answer 200).
        await _app.DisposeAsync();
        await StartAsync(Config(monitor: "100ms"));
        await using var load = new LoadGenerator(Url, connections: 16, maxDuration: TimeSpan.FromMinutes(3));
        var steps = new List<(string Version, double StartMs, double DoneMs)>();
        var rollbackMs = new List<double>();
        var versions = new Dictionary<string, string> { ["v1"] = "1" };
        var current = "1";
        for (var i = 0; i < 30; i++)
        {
            var start = load.NowMs;
            var pidsBefore = _app.Slots.Select(s => s!.Pid).ToHashSet();
            string version;
            if (i % 3 == 2)
            {
                // a rollback: back to the warm set, a switch with no process started
                var warm = _warm.Current!;
                version = versions[warm.ReleaseId];
                var warmPids = warm.Instances.Select(w => w.Pid).ToArray();
                var clock = Stopwatch.StartNew();
                Assert.Null(await new BlueGreenSwitch(_app, _warm, new SilentProgress()).RunAsync(warm.ReleaseId, warm.ReleaseDir, CancellationToken.None));
                rollbackMs.Add(clock.Elapsed.TotalMilliseconds);
                Assert.Equal(warmPids, _app.Slots.Select(s => s!.Pid).ToArray());
            }
            else
            {
                // a deploy: a new release id, so a whole green set starts
                version = current == "1" ? "2" : "1";
                var id = $"d{i}";
                versions[id] = version;
                Assert.Null(await new BlueGreenSwitch(_app, _warm, new SilentProgress()).RunAsync(id, Release(version), CancellationToken.None));
                Assert.DoesNotContain(_app.Slots.Select(s => s!.Pid), pid => pidsBefore.Contains(pid));
            }
            steps.Add((version, start, load.NowMs));
            current = version;
            await Task.Delay(150);
        }
        var stop = load.NowMs;
        var samples = await load.StopAsync();

        output.WriteLine($"{samples.Count} requests, {samples.Count(s => s.Status != 200)} failed; rollback switches took {string.Join(", ", rollbackMs.Select(m => $"{m:0.0}"))} ms");
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.Equal(10, rollbackMs.Count);
        for (var i = 0; i < steps.Count; i++)
        {
            var until = i + 1 < steps.Count ? steps[i + 1].StartMs : stop;
            var after = samples.Where(s => s.StartMs >= steps[i].DoneMs && s.EndMs <= until).ToList();
            Assert.True(after.All(s => s.Version == steps[i].Version), $"step {i}: a request after the switch to {steps[i].Version} saw another set");
        }
    }

    [Fact]
    public async Task A_rollback_within_keep_previous_is_a_switch_and_starts_no_process()
    {
        Assert.Null(await Switch("2"));
        var warmPids = _warm.Current!.Instances.Select(i => i.Pid).ToArray();
        var clock = Stopwatch.StartNew();
        Assert.Null(await Switch("1"));
        var elapsed = clock.Elapsed;
        Assert.Equal(warmPids, _app.Slots.Select(s => s!.Pid).ToArray());
        Assert.True(elapsed < TimeSpan.FromMilliseconds(100), $"the switch back took {elapsed.TotalMilliseconds} ms");
        using var client = new HttpClient();
        Assert.StartsWith("hello from 1", await client.GetStringAsync(Url));
    }

    [Fact]
    public async Task After_keep_previous_the_warm_set_stops_and_a_rollback_starts_a_new_set()
    {
        await _app.DisposeAsync();
        var config = ConfigLoader.Parse($"""
            app: bgx
            strategy: blue-green
            root: {_dir.Path}
            run:
              command: node server.js
              instances: 2
              ready: message
            proxy:
              listen: 127.0.0.1:{HealthServer.FreePort()}
            blue_green:
              keep_previous: 1s
              monitor: 0s
            """, _dir.Combine("short.yml"));
        _warm = new WarmSetKeeper();
        _app = await AppRuntime.CreateAsync(config, _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await _app.StartAllAsync("v1", Release("1"), CancellationToken.None));
        Assert.Null(await Switch("2"));
        var warm = _warm.Current!;
        var warmPids = warm.Instances.Select(i => i.Pid!.Value).ToArray();
        var clock = Stopwatch.StartNew();
        await Wait.WithinAsync(() => _warm.Current is null, TimeSpan.FromSeconds(15));
        Assert.Null(_warm.Current);
        // it leaves the agent's hands at once and is drained and stopped right after
        await Wait.WithinAsync(() => !warmPids.Any(pid => Cutover.Platform.LibC.Kill(pid, 0)), TimeSpan.FromSeconds(15) - clock.Elapsed);
        Assert.All(warmPids, pid => Assert.False(Cutover.Platform.LibC.Kill(pid, 0), $"warm instance {pid} still runs"));

        Assert.Null(await new BlueGreenSwitch(_app, _warm, new SilentProgress()).RunAsync(warm.ReleaseId, warm.ReleaseDir, CancellationToken.None));
        Assert.DoesNotContain(_app.Slots.Select(s => s!.Pid!.Value), pid => warmPids.Contains(pid));
        using var client = new HttpClient();
        Assert.StartsWith("hello from 1", await client.GetStringAsync(Url));
    }

    [Fact]
    public async Task A_green_set_that_never_becomes_ready_never_gets_traffic()
    {
        // It fails only when ready_timeout runs out: 2 s of it instead of 5 s.
        await _app.DisposeAsync();
        await StartAsync(Config(readyTimeout: "2s"));
        await using var load = new LoadGenerator(Url, connections: 8, maxDuration: TimeSpan.FromMinutes(1));
        await Task.Delay(200);
        var error = await Switch("2", "never-ready");
        var samples = await load.StopAsync();
        Assert.NotNull(error);
        Assert.Contains("never called process.send('ready')", error);
        Assert.Contains("keeps serving", error);
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.All(samples, s => Assert.Equal("1", s.Version));
    }

    [Fact]
    public async Task A_green_set_answering_500_is_rolled_back_within_monitor_and_the_count_is_exact()
    {
        await using var load = new LoadGenerator(Url, connections: 8, maxDuration: TimeSpan.FromMinutes(1));
        await Task.Delay(200);
        // one clock for the switch and the samples: the load generator's, which the samples' StartMs count on
        var error = await Switch("2", "error-500");
        var switchedBackMs = load.NowMs;
        await Task.Delay(300); // load on the set switched back to
        var samples = await load.StopAsync();
        // From green's first request to the switch back done: the monitor window and the switch back, not green's
        // start-up, which on a loaded machine alone can take seconds.
        var greenFirstMs = samples.Where(s => s.Version == "2").Select(s => s.StartMs).DefaultIfEmpty(double.NaN).Min();
        var took = TimeSpan.FromMilliseconds(switchedBackMs - greenFirstMs);

        Assert.NotNull(error);
        Assert.Contains("above max_error_rate 1%", error);
        Assert.Contains("switched back to release v1", error);
        Assert.True(took < TimeSpan.FromSeconds(5), $"took {took}");
        var failed = samples.Count(s => s.Status == 500);
        Assert.True(failed > 0);
        // every 500 the clients saw came from green, and the report counts exactly those
        var reported = long.Parse(System.Text.RegularExpressions.Regex.Match(error!, @"green answered (\d+) failed of").Groups[1].Value);
        Assert.Equal(failed, reported);
        Assert.Equal(samples.Count(s => s.Status != 200), failed);
        Assert.All(samples.Where(s => s.StartMs > switchedBackMs), s => Assert.Equal("1", s.Version));
        Assert.Equal("v1", _app.ReleaseId);
    }
}
