using System.Diagnostics;
using Cutover.History;
using Cutover.Releases;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// Ctrl-C (or SIGTERM) in the middle of a rolling or blue-green deploy through the real CLI and agent, under load:
/// the instances already replaced go back before the command exits, no request fails, the record says cancelled.
/// </summary>
[Trait(Needs.Trait, Needs.Slow)]
public class CancelledDeployTests(ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _dir = new();
    private string Home => _dir.Home;
    private string Source => _dir.Source;
    private string Root => _dir.Root;

    public void Dispose() => _dir.Dispose();

    private string Config(int port, string strategy) =>
        _dir.WriteNodeConfig(port, strategy, (strategy == "rolling" ? "rolling" : "blue_green") + ":\n  monitor: 20s\n");

    private void WriteVersion(string version) => _dir.WriteVersion(version);

    private Process Cli(Action<string> onLine, params string[] args) => _dir.Start(onLine, args);

    public static TheoryData<string, int> StrategiesAndSignals => new() { { "rolling", 2 }, { "rolling", 15 }, { "blue-green", 2 } };

    [Theory]
    [MemberData(nameof(StrategiesAndSignals))]
    public async Task A_signal_mid_deploy_puts_every_replaced_instance_back_with_no_failed_request(string strategy, int signal)
    {
        var port = HealthServer.FreePort();
        var config = Config(port, strategy);
        WriteVersion("1");
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using (var first = Cli(lines.Enqueue, "deploy", Source, "-c", config))
        {
            await first.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
            Assert.True(first.ExitCode == 0, string.Join("\n", lines));
        }
        var firstId = new FileInfo(Path.Combine(Root, "current")).LinkTarget;

        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 8, maxDuration: TimeSpan.FromMinutes(2));
        WriteVersion("2");
        lines.Clear();
        using var deploy = Cli(lines.Enqueue, "deploy", Source, "-c", config);
        // Rolling: instance 0 is on the new release, inside its monitor window. Blue-green: all traffic on green.
        var moment = strategy == "rolling" ? "node-0: pid" : "switch: done";
        await Wait.WithinAsync(() => lines.Any(l => l.Contains(moment)), TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(20));
        Assert.True(lines.Any(l => l.Contains(moment)), string.Join("\n", lines));
        await Task.Delay(300);
        using (var http = new HttpClient())
        {
            var answers = new List<string>();
            for (var i = 0; i < 20; i++) answers.Add(await http.GetStringAsync($"http://127.0.0.1:{port}/"));
            Assert.Contains(answers, a => a.StartsWith("hello from 2"));
        }

        Cutover.Platform.LibC.Kill(deploy.Id, signal);
        await deploy.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
        var exitedMs = load.NowMs;
        await Task.Delay(500);
        var samples = await load.StopAsync();
        var text = string.Join("\n", lines);
        output.WriteLine(text);
        output.WriteLine($"{samples.Count} requests, {samples.Count(s => s.Status != 200)} failed");

        Assert.Equal(130, deploy.ExitCode);
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        var after = samples.Where(s => s.StartMs > exitedMs).ToList();
        Assert.NotEmpty(after);
        Assert.All(after, s => Assert.Equal("1", s.Version));
        Assert.Equal(firstId, new FileInfo(Path.Combine(Root, "current")).LinkTarget);
        var record = new ReleaseStore(new RootLayout(Root)).List().MaxBy(r => r.ReleaseId)!;
        Assert.Equal(ReleaseStatus.Cancelled, record.Status);
        Assert.Equal("cancelled", new HistoryLog(new RootLayout(Root)).Read()[^1].Outcome);
    }
}
