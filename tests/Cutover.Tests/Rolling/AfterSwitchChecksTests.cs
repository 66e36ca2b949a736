using System.Diagnostics;
using Cutover.Releases;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// after_switch hooks and health.url run for the agent strategies as they do for symlink: through the real CLI and
/// agent, under load; a failed check puts every instance back on the previous release and runs after_rollback.
/// </summary>
[Trait(Needs.Trait, Needs.Slow)]
[RunsFor(75)]
public class AfterSwitchChecksTests(ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _dir = new();
    private string Home => _dir.Home;
    private string Source => _dir.Source;
    private string Root => _dir.Root;

    public void Dispose() => _dir.Dispose();

    private string Config(int port, string strategy, string extra) => _dir.WriteNodeConfig(port, strategy, extra);

    private void WriteVersion(string version) => _dir.WriteVersion(version);

    private async Task<CliResult> Cli(params string[] args)
    {
        var result = await _dir.Cli(args);
        output.WriteLine($"$ cutover {string.Join(' ', args)} (exit {result.ExitCode})\n{result.All}");
        return result;
    }

    [Theory]
    [InlineData("rolling")]
    [InlineData("blue-green")]
    public async Task After_switch_hooks_run_and_a_failing_health_url_puts_every_instance_back(string strategy)
    {
        var port = HealthServer.FreePort();
        var closed = HealthServer.FreePort();
        var hooks = "hooks:\n  after_switch: [\"echo $CUTOVER_RELEASE_ID >> $CUTOVER_ROOT/switched\"]\n  after_rollback: [\"touch $CUTOVER_ROOT/rolled_back\"]\n";
        // A short monitor window (defaults: 5 s per rolling batch, 30 s for blue-green): what is checked here comes
        // after it, and waiting it out in full only made the test slow.
        var monitor = (strategy == "rolling" ? "rolling" : "blue_green") + ":\n  monitor: 200ms\n";
        WriteVersion("1");
        var first = await Cli("deploy", Source, "-c", Config(port, strategy, hooks + monitor + $"health:\n  url: http://127.0.0.1:{port}/health\n  interval: 100ms\n"));
        Assert.True(first.ExitCode == 0, first.All);
        var firstId = new FileInfo(Path.Combine(Root, "current")).LinkTarget!.Replace("releases/", "");
        Assert.Equal(firstId, File.ReadAllText(Path.Combine(Root, "switched")).Trim());
        Assert.Contains("health: done", first.Stdout);

        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 4, maxDuration: TimeSpan.FromMinutes(2));
        WriteVersion("2");
        var bad = await Cli("deploy", Source, "-c", Config(port, strategy, hooks + monitor + $"health:\n  url: http://127.0.0.1:{closed}/\n  interval: 100ms\n  retries: 2\n"));
        var doneMs = load.NowMs;
        await Task.Delay(300);
        var samples = await load.StopAsync();

        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("health check failed", bad.All);
        Assert.Contains("switched back to " + firstId, bad.All);
        Assert.True(File.Exists(Path.Combine(Root, "rolled_back")), "after_rollback did not run");
        Assert.Equal("releases/" + firstId, new FileInfo(Path.Combine(Root, "current")).LinkTarget);
        Assert.Equal(ReleaseStatus.Failed, new ReleaseStore(new RootLayout(Root)).List().MaxBy(r => r.ReleaseId)!.Status);
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        var after = samples.Where(s => s.StartMs > doneMs).ToList();
        Assert.NotEmpty(after);
        Assert.All(after, s => Assert.Equal("1", s.Version));
    }

    [Fact]
    public async Task A_first_release_failing_its_health_url_leaves_nothing_running()
    {
        var port = HealthServer.FreePort();
        var closed = HealthServer.FreePort();
        WriteVersion("1");
        var first = await Cli("deploy", Source, "-c", Config(port, "rolling", $"health:\n  url: http://127.0.0.1:{closed}/\n  interval: 100ms\n  retries: 2\n"));
        Assert.Equal(1, first.ExitCode);
        Assert.Contains("no earlier release", first.All);
        Assert.False(File.Exists(Path.Combine(Root, "current")));
        var status = await Cli("status", "--json", "-c", _dir.Combine("cutover.yml"));
        Assert.DoesNotContain("\"ready\"", status.Stdout);
    }

    [Fact]
    public async Task A_paused_rolling_deploy_is_recorded_paused_exits_1_names_the_mixed_set_and_rollback_puts_all_back()
    {
        var port = HealthServer.FreePort();
        var config = Config(port, "rolling", "rolling:\n  failure_action: pause\n  monitor: 200ms\n");
        WriteVersion("1");
        Assert.Equal(0, (await Cli("deploy", Source, "-c", config)).ExitCode);
        var firstId = new FileInfo(Path.Combine(Root, "current")).LinkTarget!.Replace("releases/", "");

        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 4, maxDuration: TimeSpan.FromMinutes(2));
        WriteVersion("2");
        File.WriteAllText(Path.Combine(Source, "BEHAVIOR"), "exit-instance-1");
        var paused = await Cli("deploy", Source, "-c", config);
        File.Delete(Path.Combine(Source, "BEHAVIOR"));
        Assert.Equal(1, paused.ExitCode);
        var pausedRecord = new ReleaseStore(new RootLayout(Root)).List().MaxBy(r => r.ReleaseId)!;
        Assert.Equal(ReleaseStatus.Paused, pausedRecord.Status);
        Assert.Contains("paused", paused.Stderr);
        Assert.Contains($"1 on {pausedRecord.Id}", paused.Stderr);
        Assert.Contains($"1 on {firstId}", paused.Stderr);
        Assert.Contains("`cutover rollback`", paused.Stderr);
        Assert.Equal("paused", new Cutover.History.HistoryLog(new RootLayout(Root)).Read()[^1].Outcome);
        Assert.Equal("releases/" + firstId, new FileInfo(Path.Combine(Root, "current")).LinkTarget);

        var status = await Cli("status", "--json", "-c", config);
        var json = System.Text.Json.JsonDocument.Parse(status.Stdout).RootElement;
        Assert.Equal(pausedRecord.Id, json.GetProperty("paused").GetProperty("id").GetString());
        Assert.Equal(firstId, json.GetProperty("rollback_target").GetString());

        var rollback = await Cli("rollback", "-c", config);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        var doneMs = load.NowMs;
        await Task.Delay(300);
        var samples = await load.StopAsync();
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.All(samples.Where(s => s.StartMs > doneMs), s => Assert.Equal("1", s.Version));
        Assert.Equal(ReleaseStatus.RolledBack, new ReleaseStore(new RootLayout(Root)).Find(pausedRecord.ReleaseId)!.Status);
        Assert.Equal("releases/" + firstId, new FileInfo(Path.Combine(Root, "current")).LinkTarget);
    }

    [Fact]
    public async Task Expect_status_without_a_url_is_a_config_error()
    {
        var config = Config(HealthServer.FreePort(), "rolling", "health:\n  expect_status: 204\n");
        var result = await Cli("deploy", _dir.Path, "-c", config);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("expect_status", result.Stderr);
    }
}
