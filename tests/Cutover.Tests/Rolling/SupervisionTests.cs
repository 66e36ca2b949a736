using System.Diagnostics;
using Cutover.Config;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>What the supervisor does on its own: backoff and errored, max_memory, kill_timeout, logs.</summary>
[Collection(Serial.Name)]
public class SupervisionTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _http.Dispose();
        _dir.Dispose();
    }

    private async Task<AppRuntime> StartAsync(string behavior, string run = "", int instances = 1)
    {
        var release = AppFactory.NodeRelease(_dir.Path, "1", behavior);
        var config = ConfigLoader.Parse($"""
            app: sup
            strategy: rolling
            root: {_dir.Path}
            run:
              command: node server.js
              instances: {instances}
              ready: message
              ready_timeout: 5s
            {run}
            proxy:
              listen: 127.0.0.1:{HealthServer.FreePort()}
            health:
              interval: 200ms
            """, _dir.Combine("cutover.yml"));
        var app = await AppRuntime.CreateAsync(config, _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await app.StartAllAsync("r1", release, CancellationToken.None));
        return app;
    }

    private static Task WaitFor(Func<bool> condition, TimeSpan timeout) => Wait.WithinAsync(condition, timeout);

    [Fact]
    public async Task An_instance_that_keeps_crashing_is_restarted_with_backoff_then_marked_errored()
    {
        await using var app = await StartAsync("crash-soon", "  restart: { min_uptime: 2s, max_restarts: 3 }");
        var instance = app.Slots[0]!;
        var clock = Stopwatch.StartNew();
        await WaitFor(() => instance.State == InstanceState.Errored, TimeSpan.FromSeconds(30));
        Assert.Equal(InstanceState.Errored, instance.State);
        Assert.Equal(3, instance.Restarts);
        Assert.Contains("errored", instance.LastProblem);
        Assert.Contains("exited with code 1", instance.LastProblem);
        // backoff 100 + 200 + 400 ms between the restarts, plus the 300 ms each one lives
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(700), $"{clock.Elapsed}");
        using var client = new HttpClient();
        var response = await client.GetAsync($"http://127.0.0.1:{app.Proxy.Listen.Port}/");
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, response.StatusCode);
    }

    [Fact]
    public async Task An_instance_above_max_memory_is_replaced_start_first_without_failing_requests()
    {
        await using var app = await StartAsync("leak-once", "  max_memory: 120M", instances: 1);
        var instance = app.Slots[0]!;
        var firstPid = instance.Pid;
        await using var load = new LoadGenerator($"http://127.0.0.1:{app.Proxy.Listen.Port}/", connections: 4, maxDuration: TimeSpan.FromSeconds(30));
        await WaitFor(() => instance.Pid != firstPid && instance.State == InstanceState.Ready, TimeSpan.FromSeconds(15));
        await Task.Delay(300);
        var samples = await load.StopAsync();
        Assert.NotEqual(firstPid, instance.Pid);
        Assert.Equal(1, instance.Restarts);
        Assert.Contains("above max_memory", File.ReadAllText(app.Log.CurrentPath));
        Assert.True(samples.All(s => s.Status == 200), $"{samples.Count(s => s.Status != 200)} failed, first {samples.FirstOrDefault(s => s.Status != 200)}; log:\n{File.ReadAllText(app.Log.CurrentPath)}");
        Assert.True(samples.Count > 50);
    }

    [Fact]
    public async Task Stop_sends_sigkill_to_the_whole_group_after_kill_timeout()
    {
        var app = await StartAsync("ignore-sigint", "  kill_timeout: 1s");
        var release = AppFactory.NodeRelease(_dir.Path, "1", "ignore-sigint");
        await WaitFor(() => File.Exists(Path.Combine(release, "CHILD_PID")), TimeSpan.FromSeconds(5));
        var child = int.Parse(File.ReadAllText(Path.Combine(release, "CHILD_PID")));
        var pid = app.Slots[0]!.Pid!.Value;
        var clock = Stopwatch.StartNew();
        await app.DisposeAsync();
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1), $"stopped after {clock.Elapsed}, before kill_timeout");
        Assert.False(Cutover.Platform.LibC.Kill(pid, 0), "the instance survived");
        Assert.False(Cutover.Platform.LibC.Kill(child, 0), "its child survived the group kill");
        Assert.Contains("SIGINT: ignored", File.ReadAllText(app.Log.CurrentPath));
    }

    [Fact]
    public async Task Logs_rotate_to_a_new_file_and_a_follower_sees_every_line()
    {
        var dir = _dir.Combine("logs");
        using var sink = new LogSink(dir, maxBytes: 2000, retain: 10);
        var tail = new LogTail(dir);
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var seen = new List<string>();
        var follow = Task.Run(async () =>
        {
            await foreach (var line in tail.FollowAsync(null, cancel.Token))
            {
                seen.Add(line);
                if (seen.Count == 200) return;
            }
        });
        // The follower starts at the end of the file; nothing outside it says it has opened the file yet.
        await Task.Delay(300);
        for (var i = 0; i < 200; i++)
        {
            sink.Write("app-0", 42, "out", $"line {i}");
            if (i % 10 == 0) await Task.Delay(30);
        }
        await follow.WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(Enumerable.Range(0, 200).Select(i => $"line {i}"), seen.Select(l => l[(l.LastIndexOf(" line ", StringComparison.Ordinal) + 1)..]));
        Assert.True(Directory.GetFiles(dir, "*.log").Length >= 4, "no rotation happened");
        Assert.Equal(200, tail.Recent(1000, " app-0 ").Count);
    }
}
