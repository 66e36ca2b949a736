using System.Diagnostics;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.History;
using Cutover.Progress;
using Cutover.Releases;
using Cutover.Tests.Support;
using Hooks = Cutover.Tests.Hooks;

namespace Cutover.Tests.Deploy;

/// <summary>
/// After the switch, whatever stops the checks (SIGINT, SIGTERM, an exception) is a failure like any other: the
/// previous release is put back, after_rollback runs, the record and history say so, the exit is non-zero. And a
/// switch that failed never leaves a rollback target behind.
/// </summary>
[RunsFor(40)]
public class InterruptionTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _root;
    private readonly string _source;

    public InterruptionTests()
    {
        _root = _dir.Combine("root");
        _source = _dir.Combine("src");
    }

    public void Dispose() => _dir.Dispose();

    private string Config(string extra = "") => AppFactory.WriteConfig(_dir.Path, _root, extra);
    private string CurrentVersion => File.ReadAllText(Path.Combine(_root, "current", "VERSION")).Trim();
    private string? CurrentId => new FileInfo(Path.Combine(_root, "current")).LinkTarget?.Replace("releases/", "");
    private ReleaseStore Store => new(new RootLayout(_root));

    private async Task<CliResult> Deploy(string version, string config)
    {
        AppFactory.WriteHelloPhp(_source, version);
        return await CutoverCli.RunAsync(_dir.Path, "deploy", _source, "-c", config);
    }

    private static Task WaitFor(Func<bool> condition, string what) => Wait.UntilAsync(condition, TimeSpan.FromSeconds(60), what);

    public static TheoryData<string, int> PhasesAndSignals => new()
    {
        { "after_switch", 2 }, { "after_switch", 15 }, { "health", 2 }, { "health", 15 },
    };

    [Theory]
    [MemberData(nameof(PhasesAndSignals))]
    public async Task A_signal_after_the_switch_puts_the_previous_release_back_runs_after_rollback_and_records_cancelled(string phase, int signal)
    {
        var marker = _dir.Combine("in-phase");
        var closedPort = Cutover.Platform.LoopbackPort.Free();
        var common = "hooks:\n  after_rollback: [\"touch $CUTOVER_ROOT/after_rollback_ran\"]\n";
        var good = await Deploy("1.0.0", Config(common));
        Assert.True(good.ExitCode == 0, good.All);
        var firstId = CurrentId;

        var extra = phase == "after_switch"
            ? $"hooks:\n  after_switch: [\"touch {marker}; sleep 60\"]\n  after_rollback: [\"touch $CUTOVER_ROOT/after_rollback_ran\"]\n"
            : $"{common}health:\n  url: http://127.0.0.1:{closedPort}/\n  retries: 100000\n  interval: 100ms\n";
        var config = Config(extra);
        AppFactory.WriteHelloPhp(_source, "2.0.0");
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var cli = CutoverCli.Start(_dir.Path, output.Enqueue, "deploy", _source, "-c", config);
        if (phase == "after_switch") await WaitFor(() => File.Exists(marker), "the after_switch hook");
        else await WaitFor(() => CurrentId != firstId && output.Any(l => l.Contains("health")), "the health check");
        Assert.Equal("2.0.0", CurrentVersion);

        Cutover.Platform.LibC.Kill(cli.Id, signal);
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await cli.WaitForExitAsync(limit.Token);

        var text = string.Join("\n", output);
        Assert.Equal(130, cli.ExitCode);
        Assert.Equal(firstId, CurrentId);
        Assert.Equal("1.0.0", CurrentVersion);
        Assert.True(File.Exists(Path.Combine(_root, "after_rollback_ran")), "after_rollback did not run:\n" + text);
        var cancelled = Store.List().MaxBy(r => r.ReleaseId)!;
        Assert.Equal(ReleaseStatus.Cancelled, cancelled.Status);
        var last = new HistoryLog(new RootLayout(_root)).Read()[^1];
        Assert.Equal("cancelled", last.Outcome);
        Assert.Equal(cancelled.Id, last.Release);
        Assert.Contains("switched back to", text);
        // Nothing to roll back to but the first release, which is live: the cancelled one is no target.
        var rollback = await CutoverCli.RunAsync(_dir.Path, "rollback", "-c", config);
        Assert.NotEqual(0, rollback.ExitCode);
        Assert.Equal(firstId, CurrentId);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(15)]
    public async Task A_signal_before_the_switch_leaves_the_live_release_and_records_cancelled(int signal)
    {
        var inHook = _dir.Combine("in-build");
        Assert.Equal(0, (await Deploy("1.0.0", Config())).ExitCode);
        var firstId = CurrentId;
        var config = Config($"hooks:\n  build: [\"touch {inHook}; sleep 68.{signal}\"]\n");
        AppFactory.WriteHelloPhp(_source, "2.0.0");
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var cli = CutoverCli.Start(_dir.Path, output.Enqueue, "deploy", _source, "-c", config);
        await WaitFor(() => File.Exists(inHook), "the build hook");
        Cutover.Platform.LibC.Kill(cli.Id, signal);
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await cli.WaitForExitAsync(limit.Token);
        Assert.Equal(130, cli.ExitCode);
        Assert.Equal(firstId, CurrentId);
        Assert.Equal(ReleaseStatus.Cancelled, Store.List().MaxBy(r => r.ReleaseId)!.Status);
        Assert.Equal("cancelled", new HistoryLog(new RootLayout(_root)).Read()[^1].Outcome);
        Assert.True(await Hooks.HookRunnerTests.GoneWithin($"68.{signal}", TimeSpan.FromSeconds(5)), "the build hook outlived the cancelled deploy");
    }

    [Fact]
    public async Task A_second_signal_during_the_undo_does_not_stop_it_and_says_so()
    {
        var inHook = _dir.Combine("in-after-switch");
        var undoStarted = _dir.Combine("undo-started");
        var undoFinished = _dir.Combine("undo-finished");
        Assert.Equal(0, (await Deploy("1.0.0", Config())).ExitCode);
        var firstId = CurrentId;
        var config = Config($"hooks:\n  after_switch: [\"touch {inHook}; sleep 60\"]\n  after_rollback: [\"touch {undoStarted}; sleep 2; touch {undoFinished}\"]\n");
        AppFactory.WriteHelloPhp(_source, "2.0.0");
        var output = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var cli = CutoverCli.Start(_dir.Path, output.Enqueue, "deploy", _source, "-c", config);
        await WaitFor(() => File.Exists(inHook), "the after_switch hook");
        Cutover.Platform.LibC.Kill(cli.Id, 2);
        await WaitFor(() => File.Exists(undoStarted), "the undo's after_rollback hook");
        Cutover.Platform.LibC.Kill(cli.Id, 2);
        Cutover.Platform.LibC.Kill(cli.Id, 15);
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await cli.WaitForExitAsync(limit.Token);
        var text = string.Join("\n", output);
        Assert.Equal(130, cli.ExitCode);
        Assert.True(File.Exists(undoFinished), "the undo was cut short:\n" + text);
        Assert.Contains("does not stop the undo", text);
        Assert.Equal(firstId, CurrentId);
    }

    [Fact]
    public async Task An_exception_in_the_checks_after_the_switch_switches_back()
    {
        AppFactory.WriteHelloPhp(_source, "1.0.0");
        using var http = new HttpClient();
        var config = ConfigLoader.Load(Config());
        var first = await new DeployPipeline(config, new SilentProgress(), http).DeployAsync(new DeployRequest(_source, "r1", TimeSpan.Zero, "test"), CancellationToken.None);
        Assert.True(first.Succeeded, first.Error);
        // A timer cannot take 2000 h: CancelAfter throws inside the health check, after the switch.
        var broken = config with { Health = new HealthConfig { Url = new Uri("http://127.0.0.1:1/"), Timeout = TimeSpan.FromHours(2000), Retries = 1 } };
        AppFactory.WriteHelloPhp(_source, "2.0.0");
        var second = await new DeployPipeline(broken, new SilentProgress(), http).DeployAsync(new DeployRequest(_source, "r2", TimeSpan.Zero, "test"), CancellationToken.None);
        Assert.Equal(DeployOutcome.RolledBack, second.Outcome);
        Assert.Contains("switched back to " + first.Release, second.Error);
        Assert.Equal(first.Release, CurrentId);
        Assert.Equal(ReleaseStatus.Failed, Store.Find(ReleaseId.Parse(second.Release))!.Status);
    }

    [Fact]
    public async Task A_failed_switch_leaves_no_rollback_target_that_never_served()
    {
        var config = Config();
        Assert.Equal(0, (await Deploy("1.0.0", config)).ExitCode);
        var v1 = CurrentId;
        // The root turns immutable after the checks before staging (a before_switch hook does it): staging into
        // releases/ worked, the switch cannot create its link beside `current`.
        CliResult failed;
        try
        {
            failed = await Deploy("2.0.0", Config("hooks:\n  before_switch: [\"chattr +i $CUTOVER_ROOT\"]\n"));
        }
        finally
        {
            Run("chattr", "-i", _root);
        }
        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("switch", failed.Stderr);
        Assert.Equal(v1, CurrentId);
        var neverServed = Store.List().MaxBy(r => r.ReleaseId)!;
        Assert.Equal(ReleaseStatus.Failed, neverServed.Status);

        config = Config(); // the same file, without the hook
        Assert.Equal(0, (await Deploy("3.0.0", config)).ExitCode);
        var rollback = await CutoverCli.RunAsync(_dir.Path, "rollback", "-c", config);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        Assert.Equal(v1, CurrentId);
        Assert.Equal("1.0.0", CurrentVersion);
    }

    [Fact]
    public void Recovery_fails_a_switched_release_that_never_went_live_and_keeps_the_live_one()
    {
        var layout = new RootLayout(_root);
        var store = new ReleaseStore(layout);
        store.EnsureLayout();
        var live = new ReleaseRecord { Id = "20260101_000000", Created = DateTimeOffset.UtcNow, Status = ReleaseStatus.Switched };
        var never = new ReleaseRecord { Id = "20260102_000000", Created = DateTimeOffset.UtcNow, Status = ReleaseStatus.Switched };
        foreach (var r in new[] { live, never })
        {
            store.Save(r);
            Directory.CreateDirectory(layout.ReleaseDir(r.ReleaseId));
        }
        new CurrentLink(layout).SwitchTo(live.ReleaseId);
        var current = new CurrentLink(layout);
        new ReleaseBookkeeping(layout, store, current, new HistoryLog(layout), new SilentProgress()).Recover();
        Assert.Equal(ReleaseStatus.Failed, store.Find(never.ReleaseId)!.Status);
        Assert.Equal(ReleaseStatus.Switched, store.Find(live.ReleaseId)!.Status);
        Assert.NotNull(store.Find(live.ReleaseId)!.WentLive);
        // From a later release, the one that went live is the target; the one that never did is not.
        Assert.Equal(live.Id, ReleasePlanner.RollbackTarget(store.List(), ReleaseId.Parse("20260103_000000"))?.Id);
    }

    private static void Run(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { UseShellExecute = false })!;
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {process.ExitCode}");
    }
}
