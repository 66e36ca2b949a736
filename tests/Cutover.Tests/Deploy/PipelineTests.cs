using Cutover.Config;
using Cutover.Deploy;
using Cutover.History;
using Cutover.Progress;
using Cutover.Releases;
using Cutover.Staging;
using Cutover.Swarm;
using Cutover.Tests.Support;

namespace Cutover.Tests.Deploy;

/// <summary>
/// The fast tier of the deploy pipeline: the real <see cref="DeployPipeline"/> on a temp root (real staging, hooks,
/// records, `current`, history) with a fake activation step, and Swarm's real activation over a fake
/// <see cref="ISwarmUpdater"/>, so every outcome, every undo and a cancellation at each step run in seconds.
/// </summary>
public class PipelineTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();
    private readonly string _root;
    private readonly string _source;

    /// <summary>after_rollback leaves a line per run, so a test sees that (and in which release) it ran.</summary>
    private const string AfterRollback = "  after_rollback: [\"echo $CUTOVER_RELEASE_ID >> $CUTOVER_ROOT/after_rollback.log\"]\n";

    public PipelineTests()
    {
        _root = _dir.Combine("root");
        _source = _dir.Combine("src");
        Directory.CreateDirectory(_source);
    }

    public void Dispose()
    {
        _http.Dispose();
        _dir.Dispose();
    }

    private DeployPipeline Pipeline(IReleaseActivation activation, string extra = "", IDeployProgress? progress = null)
    {
        var config = ConfigLoader.Load(AppFactory.WriteConfig(_dir.Path, _root, extra));
        return new DeployPipeline(config, progress ?? new SilentProgress(), _http, activation);
    }

    private Task<DeployResult> Deploy(IReleaseActivation activation, string version, string extra = "", IDeployProgress? progress = null, CancellationToken cancellationToken = default)
    {
        File.WriteAllText(Path.Combine(_source, "VERSION"), version + "\n");
        return Pipeline(activation, extra, progress).DeployAsync(new DeployRequest(_source, version, TimeSpan.Zero, "test"), cancellationToken);
    }

    private ReleaseStore Store => new(new RootLayout(_root));
    private string? CurrentId => new CurrentLink(new RootLayout(_root)).Read()?.Value;
    private ReleaseRecord Record(string id) => Store.Find(ReleaseId.Parse(id))!;
    private HistoryEntry LastHistory => new HistoryLog(new RootLayout(_root)).Read()[^1];
    private string[] AfterRollbackRuns => File.Exists(Path.Combine(_root, "after_rollback.log")) ? File.ReadAllLines(Path.Combine(_root, "after_rollback.log")) : [];

    /// <summary>A good first release, so that the deploy under test has a previous one to go back to.</summary>
    private async Task<string> FirstRelease()
    {
        var first = await Deploy(new FakeActivation(), "1");
        Assert.True(first.Succeeded, first.Error);
        return first.Release;
    }

    [Fact]
    public async Task A_live_activation_records_the_release_active_with_went_live_and_moves_current()
    {
        var previous = await FirstRelease();
        var activation = new FakeActivation();
        var result = await Deploy(activation, "2");

        Assert.Equal(DeployOutcome.Success, result.Outcome);
        Assert.Equal(result.Release, CurrentId);
        var record = Record(result.Release);
        Assert.Equal(ReleaseStatus.Active, record.Status);
        Assert.NotNull(record.WentLive);
        Assert.Equal(("success", previous), (LastHistory.Outcome, LastHistory.From));
        Assert.Equal((1, 0), (activation.GoLiveCalls, activation.UndoCalls));
    }

    [Theory]
    [InlineData(ActivationOutcome.NotLive, ReleaseStatus.Failed, DeployOutcome.Failed, "failed")]
    [InlineData(ActivationOutcome.RolledBack, ReleaseStatus.Failed, DeployOutcome.RolledBack, "rolled_back")]
    [InlineData(ActivationOutcome.Paused, ReleaseStatus.Paused, DeployOutcome.Paused, "paused")]
    [InlineData(ActivationOutcome.Cancelled, ReleaseStatus.Cancelled, DeployOutcome.Cancelled, "cancelled")]
    public async Task An_activation_that_did_not_go_live_is_recorded_as_it_says_and_leaves_current_and_nothing_to_undo(
        ActivationOutcome outcome, ReleaseStatus status, DeployOutcome deployOutcome, string historyWord)
    {
        var previous = await FirstRelease();
        var activation = new FakeActivation { GoLive = _ => Task.FromResult(new ActivationResult(outcome, $"the fake said {outcome}")) };
        var result = await Deploy(activation, "2", "hooks:\n" + AfterRollback);

        Assert.Equal(deployOutcome, result.Outcome);
        Assert.Equal($"the fake said {outcome}", result.Error);
        Assert.Equal(previous, CurrentId);
        var record = Record(result.Release);
        Assert.Equal(status, record.Status);
        Assert.Null(record.WentLive);
        Assert.Equal(historyWord, LastHistory.Outcome);
        Assert.Equal(0, activation.UndoCalls);
        Assert.Empty(AfterRollbackRuns);
    }

    [Fact]
    public async Task A_failing_after_switch_hook_undoes_the_activation_once_switches_back_and_runs_after_rollback()
    {
        var previous = await FirstRelease();
        var activation = new FakeActivation();
        var result = await Deploy(activation, "2", "hooks:\n  after_switch: [\"exit 3\"]\n" + AfterRollback);

        Assert.Equal(DeployOutcome.RolledBack, result.Outcome);
        Assert.Contains("after_switch hook failed", result.Error);
        Assert.Contains($"switched back to {previous}", result.Error);
        Assert.Equal(1, activation.UndoCalls);
        Assert.Equal(previous, CurrentId);
        Assert.Equal(ReleaseStatus.Failed, Record(result.Release).Status);
        Assert.Equal("rolled_back", LastHistory.Outcome);
        Assert.Equal([previous], AfterRollbackRuns);
    }

    [Fact]
    public async Task A_failing_health_check_undoes_the_activation_once_and_runs_after_rollback()
    {
        var previous = await FirstRelease();
        var activation = new FakeActivation();
        // Port 9 (discard) has no listener here: refused at once, every attempt.
        var result = await Deploy(activation, "2", "health:\n  url: http://127.0.0.1:9/\n  interval: 10ms\n  retries: 2\n  timeout: 1s\nhooks:\n" + AfterRollback);

        Assert.Equal(DeployOutcome.RolledBack, result.Outcome);
        Assert.Contains("health check failed after 2 attempts", result.Error);
        Assert.Equal(1, activation.UndoCalls);
        Assert.Equal(previous, CurrentId);
        Assert.Equal([previous], AfterRollbackRuns);
    }

    [Fact]
    public async Task An_undo_that_cannot_put_traffic_back_fails_the_deploy_and_says_why()
    {
        var previous = await FirstRelease();
        var activation = new FakeActivation { Undo = new ActivationUndo(false, "the fake could not move back") };
        var result = await Deploy(activation, "2", "hooks:\n  after_switch: [\"exit 3\"]\n");

        Assert.Equal(DeployOutcome.Failed, result.Outcome);
        Assert.EndsWith($"switched back to {previous}, but the fake could not move back", result.Error);
        Assert.Equal(previous, CurrentId);
    }

    [Fact]
    public async Task An_activation_that_throws_is_taken_back_as_if_it_had_moved_traffic()
    {
        var previous = await FirstRelease();
        var activation = new FakeActivation { GoLive = _ => throw new InvalidOperationException("the fake broke") };
        var result = await Deploy(activation, "2", "hooks:\n" + AfterRollback);

        Assert.Equal(DeployOutcome.RolledBack, result.Outcome);
        Assert.Contains("the fake step failed: the fake broke", result.Error);
        Assert.Equal(1, activation.UndoCalls);
        Assert.Equal(previous, CurrentId);
        Assert.Equal(ReleaseStatus.Failed, Record(result.Release).Status);
        Assert.Equal([previous], AfterRollbackRuns);
    }

    [Fact]
    public async Task A_first_release_that_fails_its_checks_leaves_no_current_and_undoes_once()
    {
        var activation = new FakeActivation();
        var result = await Deploy(activation, "1", "hooks:\n  after_switch: [\"exit 3\"]\n");

        Assert.Equal(DeployOutcome.RolledBack, result.Outcome);
        Assert.Contains("there was no earlier release, so 'current' was removed", result.Error);
        Assert.Equal(1, activation.UndoCalls);
        Assert.Null(CurrentId);
    }

    [Theory]
    [InlineData("activate")]
    [InlineData("after_switch")]
    [InlineData("health")]
    public async Task A_signal_after_going_live_undoes_once_runs_after_rollback_and_records_cancelled(string step)
    {
        var previous = await FirstRelease();
        using var signal = new CancellationTokenSource();
        var activation = new FakeActivation();
        if (step == "activate")
            activation.GoLive = async cancellationToken =>
            {
                // Cut off mid-way: the strategy cannot say what moved, so the pipeline must undo.
                await signal.CancelAsync();
                await Task.Delay(Timeout.Infinite, cancellationToken);
                return ActivationResult.Live;
            };
        var extra = "hooks:\n  after_switch: [\"true\"]\n" + AfterRollback + "health:\n  url: http://127.0.0.1:9/\n  interval: 10ms\n  retries: 2\n  timeout: 1s\n";
        var result = await Deploy(activation, "2", extra, new CancelAtPhase(step, signal), signal.Token);

        Assert.Equal(DeployOutcome.Cancelled, result.Outcome);
        Assert.StartsWith("cancelled", result.Error);
        Assert.Equal(1, activation.UndoCalls);
        Assert.Equal(previous, CurrentId);
        Assert.Equal(ReleaseStatus.Cancelled, Record(result.Release).Status);
        Assert.Equal("cancelled", LastHistory.Outcome);
        Assert.Equal([previous], AfterRollbackRuns);
    }

    [Theory]
    [InlineData("stage")]
    [InlineData("build")]
    [InlineData("before_switch")]
    [InlineData("dedupe")]
    public async Task A_signal_before_activation_leaves_the_live_release_untouched_and_records_cancelled(string step)
    {
        var previous = await FirstRelease();
        using var signal = new CancellationTokenSource();
        var activation = new FakeActivation();
        var result = await Deploy(activation, "2", "hooks:\n  build: [\"true\"]\n  before_switch: [\"true\"]\n" + AfterRollback, new CancelAtPhase(step, signal), signal.Token);

        Assert.Equal(DeployOutcome.Cancelled, result.Outcome);
        Assert.Equal(previous, CurrentId);
        Assert.Equal(ReleaseStatus.Cancelled, Record(result.Release).Status);
        Assert.Equal("cancelled", LastHistory.Outcome);
        Assert.Equal((0, 0), (activation.GoLiveCalls, activation.UndoCalls));
        Assert.Empty(AfterRollbackRuns);
    }

    [Fact]
    public async Task A_fleet_host_runs_the_same_steps_and_its_undo_goes_through_the_strategy()
    {
        var previous = await FirstRelease();
        var activation = new FakeActivation();
        var pipeline = Pipeline(activation, "hooks:\n" + AfterRollback);
        File.WriteAllText(Path.Combine(_source, "VERSION"), "2\n");
        using var prepared = await pipeline.BeginAsync(ArtifactSource.Open(_source, _root), "2", TimeSpan.Zero, "test", CancellationToken.None);
        await pipeline.StageAsync(prepared, CancellationToken.None);
        await pipeline.MigrateAsync(prepared, CancellationToken.None);
        await pipeline.BeforeSwitchAsync(prepared, CancellationToken.None);
        var switched = await pipeline.ActivateAsync(prepared, CancellationToken.None);
        Assert.True(switched.Succeeded, switched.Error);

        await pipeline.UndoAsync(prepared, "another host failed", CancellationToken.None);

        Assert.Equal(1, activation.UndoCalls);
        Assert.Equal(previous, CurrentId);
        Assert.Equal(ReleaseStatus.RolledBack, Record(switched.Release).Status);
        Assert.Equal(ReleaseStatus.Active, Record(previous).Status);
        Assert.Equal([previous], AfterRollbackRuns);
    }

    [Fact]
    public async Task A_rollback_asks_the_strategy_to_move_to_the_target_then_moves_current()
    {
        var first = await FirstRelease();
        var second = (await Deploy(new FakeActivation(), "2")).Release;
        var activation = new FakeActivation();
        var result = await Pipeline(activation).RollbackAsync(new RollbackRequest(null, TimeSpan.Zero, "test"), CancellationToken.None);

        Assert.Equal((second, first), (result.From, result.To));
        Assert.Equal([first], activation.RolledBackTo);
        Assert.Equal(first, CurrentId);
        Assert.Equal(ReleaseStatus.RolledBack, Record(second).Status);
    }

    [Fact]
    public async Task A_rollback_the_strategy_refuses_leaves_current_and_records_the_failure()
    {
        var first = await FirstRelease();
        var second = (await Deploy(new FakeActivation(), "2")).Release;
        var activation = new FakeActivation { RollBack = "the fake could not move" };
        var e = await Assert.ThrowsAsync<DeployException>(() => Pipeline(activation).RollbackAsync(new RollbackRequest(null, TimeSpan.Zero, "test"), CancellationToken.None));

        Assert.Equal($"rollback to {first} failed: the fake could not move", e.Message);
        Assert.Equal(second, CurrentId);
        Assert.Equal(("rollback", "failed"), (LastHistory.Action, LastHistory.Outcome));
    }

    // ---- Swarm's activation over a fake Swarm ----

    private const string SwarmConfig = "app: shop\nstrategy: swarm\nroot: {0}\nswarm:\n  service: shop\n  image: app:v0\n  replicas: 2\n  update: {{ failure_action: rollback }}\n  rollback: {{ failure_action: pause }}\n";

    private static SwarmUpdateOutcome Converged => new(SwarmUpdateResult.Converged, "completed", null, []);

    private (DeployPipeline Pipeline, FakeSwarm Swarm) SwarmPipeline(FakeSwarm swarm, string extra = "", IDeployProgress? progress = null)
    {
        var file = Path.Combine(_dir.Path, "cutover.yml");
        File.WriteAllText(file, string.Format(SwarmConfig, _root) + extra);
        var config = ConfigLoader.Load(file);
        progress ??= new SilentProgress();
        return (new DeployPipeline(config, progress, _http, new SwarmActivation(config, swarm, new ReleaseStore(new RootLayout(config.Root)), progress)), swarm);
    }

    private static DeployRequest Image(string image) => new("", null, TimeSpan.Zero, "test") { Image = image };

    private async Task<string> DeploySwarm(FakeSwarm swarm, string image, string extra = "")
    {
        var result = await SwarmPipeline(swarm, extra).Pipeline.DeployAsync(Image(image), CancellationToken.None);
        Assert.True(result.Succeeded, result.Error);
        return result.Release;
    }

    [Fact]
    public async Task Swarm_a_converged_update_records_the_image_and_moves_current()
    {
        var swarm = new FakeSwarm();
        var result = await SwarmPipeline(swarm).Pipeline.DeployAsync(Image("app:v1"), CancellationToken.None);

        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(result.Release, CurrentId);
        Assert.Equal("app:v1", Record(result.Release).Image);
        Assert.Equal("app:v1\n", File.ReadAllText(Path.Combine(_root, "releases", result.Release, "image")));
        Assert.Equal([("app:v1", result.Release, "update")], swarm.Applied);
    }

    [Theory]
    [InlineData(SwarmUpdateResult.RolledBack, true, DeployOutcome.RolledBack)]
    [InlineData(SwarmUpdateResult.Paused, false, DeployOutcome.Failed)]
    [InlineData(SwarmUpdateResult.Stuck, false, DeployOutcome.Failed)]
    [InlineData(SwarmUpdateResult.Stuck, true, DeployOutcome.RolledBack)]
    public async Task Swarm_an_update_that_did_not_converge_is_failed_and_nothing_is_updated_back(SwarmUpdateResult ending, bool backOnPrevious, DeployOutcome outcome)
    {
        var swarm = new FakeSwarm();
        var previous = await DeploySwarm(swarm, "app:v1");
        swarm.Apply = (_, _, _, _) => Task.FromResult(new SwarmUpdateOutcome(ending, "x", null, []) { BackOnPrevious = backOnPrevious });
        var result = await SwarmPipeline(swarm, "hooks:\n" + AfterRollback).Pipeline.DeployAsync(Image("app:v2"), CancellationToken.None);

        Assert.Equal(outcome, result.Outcome);
        Assert.Equal(previous, CurrentId);
        Assert.Equal(ReleaseStatus.Failed, Record(result.Release).Status);
        Assert.Equal(2, swarm.Applied.Count);
        Assert.Empty(AfterRollbackRuns);
    }

    [Fact]
    public async Task Swarm_a_failing_after_switch_updates_back_to_the_last_good_image_not_swarms_previous_spec()
    {
        var swarm = new FakeSwarm();
        var good = await DeploySwarm(swarm, "app:v1");
        // Swarm rolls v2 back by itself: its PreviousSpec is now v2's, the failed one.
        swarm.Apply = (_, _, _, _) => Task.FromResult(new SwarmUpdateOutcome(SwarmUpdateResult.RolledBack, "rollback_completed", null, []) { BackOnPrevious = true });
        await SwarmPipeline(swarm).Pipeline.DeployAsync(Image("app:v2"), CancellationToken.None);
        swarm.Apply = (_, _, _, _) => Task.FromResult(Converged);

        var result = await SwarmPipeline(swarm, "hooks:\n  before_switch: [\"true\"]\n  after_switch: [\"exit 3\"]\n" + AfterRollback).Pipeline.DeployAsync(Image("app:v3"), CancellationToken.None);

        Assert.Equal(DeployOutcome.RolledBack, result.Outcome);
        Assert.Contains("after_switch hook failed", result.Error);
        Assert.Equal(("app:v1", good, "rollback"), swarm.Applied[^1]);
        Assert.Equal((0, 0), (swarm.Restored, swarm.Removed));
        Assert.Equal(good, CurrentId);
        Assert.Equal([good], AfterRollbackRuns);
    }

    [Fact]
    public async Task Swarm_a_signal_during_the_update_updates_back_and_records_cancelled()
    {
        var swarm = new FakeSwarm();
        var previous = await DeploySwarm(swarm, "app:v1");
        using var signal = new CancellationTokenSource();
        swarm.Apply = async (image, _, _, cancellationToken) =>
        {
            if (image == "app:v1") return Converged;
            await signal.CancelAsync();
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return Converged;
        };
        var result = await SwarmPipeline(swarm, "hooks:\n" + AfterRollback).Pipeline.DeployAsync(Image("app:v2"), signal.Token);

        Assert.Equal(DeployOutcome.Cancelled, result.Outcome);
        Assert.Equal("cancelled during the service update; switched back to " + previous, result.Error);
        Assert.Equal(("app:v1", previous, "rollback"), swarm.Applied[^1]);
        Assert.Equal(previous, CurrentId);
        Assert.Equal(ReleaseStatus.Cancelled, Record(result.Release).Status);
        Assert.Equal([previous], AfterRollbackRuns);
    }

    [Fact]
    public async Task Swarm_a_signal_before_the_update_leaves_the_service_untouched()
    {
        var swarm = new FakeSwarm();
        var previous = await DeploySwarm(swarm, "app:v1");
        using var signal = new CancellationTokenSource();
        var result = await SwarmPipeline(swarm, "hooks:\n  before_switch: [\"true\"]\n", new CancelAtPhase("before_switch", signal)).Pipeline.DeployAsync(Image("app:v2"), signal.Token);

        Assert.Equal(DeployOutcome.Cancelled, result.Outcome);
        Assert.Single(swarm.Applied);
        Assert.Equal(previous, CurrentId);
    }

    [Fact]
    public async Task Swarm_a_first_release_that_fails_removes_the_service_it_created()
    {
        var swarm = new FakeSwarm { Exists = false };
        var result = await SwarmPipeline(swarm, "hooks:\n  after_switch: [\"exit 3\"]\n").Pipeline.DeployAsync(Image("app:v1"), CancellationToken.None);

        Assert.Equal(DeployOutcome.RolledBack, result.Outcome);
        Assert.EndsWith("'current' was removed, and service shop, which this deploy created, was removed", result.Error);
        Assert.Equal((1, 0), (swarm.Removed, swarm.Restored));
        Assert.Null(CurrentId);
    }

    [Fact]
    public async Task Swarm_a_first_release_into_a_service_that_ran_before_puts_back_its_previous_spec()
    {
        var swarm = new FakeSwarm { Exists = true };
        var result = await SwarmPipeline(swarm, "hooks:\n  after_switch: [\"exit 3\"]\n").Pipeline.DeployAsync(Image("app:v1"), CancellationToken.None);

        Assert.Equal(DeployOutcome.RolledBack, result.Outcome);
        Assert.Equal((0, 1), (swarm.Removed, swarm.Restored));
    }

    [Fact]
    public async Task Swarm_an_update_back_retries_a_version_conflict_and_reports_one_it_cannot_finish()
    {
        var swarm = new FakeSwarm();
        var previous = await DeploySwarm(swarm, "app:v1");
        var conflicts = 1;
        swarm.Apply = (image, _, _, _) => image == "app:v1" && conflicts-- > 0
            ? throw new DeployException("docker refused: update out of sequence")
            : Task.FromResult(Converged);
        var retried = await SwarmPipeline(swarm, "hooks:\n  after_switch: [\"exit 3\"]\n").Pipeline.DeployAsync(Image("app:v2"), CancellationToken.None);
        Assert.Equal(DeployOutcome.RolledBack, retried.Outcome);

        swarm.Apply = (image, _, _, _) => Task.FromResult(image == "app:v1" ? new SwarmUpdateOutcome(SwarmUpdateResult.Paused, "paused", null, []) : Converged);
        var stuck = await SwarmPipeline(swarm, "hooks:\n  after_switch: [\"exit 3\"]\n").Pipeline.DeployAsync(Image("app:v3"), CancellationToken.None);
        Assert.Equal(DeployOutcome.Failed, stuck.Outcome);
        Assert.Contains($"but the service could not be updated back to {previous}: Swarm paused the update", stuck.Error);
    }

    [Fact]
    public async Task Swarm_a_rollback_updates_the_service_to_the_targets_image_with_the_rollback_config_and_runs_after_rollback()
    {
        var swarm = new FakeSwarm();
        var first = await DeploySwarm(swarm, "app:v1");
        var second = await DeploySwarm(swarm, "app:v2");
        var result = await SwarmPipeline(swarm, "hooks:\n" + AfterRollback).Pipeline.RollbackAsync(new RollbackRequest(null, TimeSpan.Zero, "test"), CancellationToken.None);

        Assert.Equal((second, first), (result.From, result.To));
        Assert.Equal(("app:v1", first, "rollback"), swarm.Applied[^1]);
        Assert.Equal(first, CurrentId);
        Assert.Equal([first], AfterRollbackRuns);
    }

    [Fact]
    public void Swarm_refuses_build_hooks_with_a_config_error()
    {
        var file = Path.Combine(_dir.Path, "cutover.yml");
        File.WriteAllText(file, string.Format(SwarmConfig, _root) + "hooks:\n  build: [\"make\"]\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(file));
        Assert.Contains("build: not used by strategy: swarm (used by: symlink, rolling, blue-green)", e.Message);
    }

    [Fact]
    public void Swarm_refuses_shared_paths_with_a_config_error()
    {
        var file = Path.Combine(_dir.Path, "cutover.yml");
        File.WriteAllText(file, string.Format(SwarmConfig, _root) + "shared:\n  dirs: [storage]\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load(file));
        Assert.Contains("shared: not used by strategy: swarm (used by: symlink, rolling, blue-green)", e.Message);
    }

    /// <summary>An activation step that records its calls and does what the test says (by default: live at once).</summary>
    private sealed class FakeActivation : IReleaseActivation
    {
        public Func<CancellationToken, Task<ActivationResult>> GoLive { get; set; } = _ => Task.FromResult(ActivationResult.Live);
        public ActivationUndo Undo { get; init; } = ActivationUndo.Done;
        public string? RollBack { get; init; }
        public int GoLiveCalls { get; private set; }
        public int UndoCalls { get; private set; }
        public List<string> RolledBackTo { get; } = [];

        public string Step => "the fake step";
        public bool MovesTrafficItself => true;

        public Task<ActivationResult> GoLiveAsync(PreparedRelease release, CancellationToken cancellationToken)
        {
            GoLiveCalls++;
            return GoLive(cancellationToken);
        }

        public Task<ActivationUndo> UndoAsync(PreparedRelease release, CancellationToken cancellationToken)
        {
            UndoCalls++;
            return Task.FromResult(Undo);
        }

        public Task<string?> RollBackAsync(ReleaseId from, ReleaseRecord target, PhaseClock clock, CancellationToken cancellationToken)
        {
            RolledBackTo.Add(target.Id);
            return Task.FromResult(RollBack);
        }
    }

    /// <summary>A Swarm that records each update (image, release label, "update" or "rollback" config) and answers as the test says.</summary>
    private sealed class FakeSwarm : ISwarmUpdater
    {
        public Func<string, string, SwarmUpdateConfig, CancellationToken, Task<SwarmUpdateOutcome>> Apply { get; set; } = (_, _, _, _) => Task.FromResult(Converged);
        public bool Exists { get; set; } = true;
        public List<(string Image, string Release, string Config)> Applied { get; } = [];
        public int Removed { get; private set; }
        public int Restored { get; private set; }

        public Task<bool> ServiceExistsAsync(CancellationToken cancellationToken) => Task.FromResult(Exists);

        public Task<SwarmUpdateOutcome> ApplyAsync(string image, string release, SwarmUpdateConfig updateWith, CancellationToken cancellationToken)
        {
            // The config's defaults tell them apart: swarm.update fails with rollback, swarm.rollback with pause.
            Applied.Add((image, release, updateWith.FailureAction == "rollback" ? "update" : "rollback"));
            return Apply(image, release, updateWith, cancellationToken);
        }

        public Task RemoveServiceAsync(CancellationToken cancellationToken)
        {
            Removed++;
            Exists = false;
            return Task.CompletedTask;
        }

        public Task RestorePreviousSpecAsync(CancellationToken cancellationToken)
        {
            Restored++;
            return Task.CompletedTask;
        }
    }

    /// <summary>SIGINT as a deploy sees it, at a chosen moment: the token is cancelled when the named phase starts.</summary>
    private sealed class CancelAtPhase(string phase, CancellationTokenSource signal) : IDeployProgress
    {
        public void PhaseStarted(string name)
        {
            if (name == phase) signal.Cancel();
        }

        public void PhaseCompleted(string name, TimeSpan elapsed, string? detail = null) { }
        public void PhaseFailed(string name, TimeSpan elapsed, string error) { }
        public void Output(string name, string line) { }
        public void Info(string message) { }
        public void Warning(string message) { }
        public void Batch(string process, int number, int of, Cutover.Progress.BatchStep step) { }
    }
}
