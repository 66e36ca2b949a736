using Cutover.Config;
using Cutover.Health;
using Cutover.History;
using Cutover.Hooks;
using Cutover.Migrations;
using Cutover.Progress;
using Cutover.Releases;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Deploy;

/// <summary>
/// The steps of <see cref="DeployPipeline"/> around a strategy's activation, the same for every strategy:
/// recover what an interrupted deploy left, lint and run the migrations, run hooks, verify a release after it went
/// live (after_switch, health.url) and switch `current` back with after_rollback, prune to keep_releases, pick a
/// rollback's target, and write the history lines of deploys and rollbacks.
/// </summary>
public sealed class ReleaseBookkeeping(RootLayout layout, ReleaseStore store, CurrentLink current, HistoryLog history, IDeployProgress progress, ILogger? logger = null)
{
    private readonly ILogger _logger = logger ?? NullLogger.Instance;
    private readonly HookRunner _hooks = new();

    /// <summary>Under the lock: leftover temp links go, and releases an interrupted deploy left in staging are marked failed.</summary>
    public void Recover()
    {
        _logger.LogDebug("holding the lock on {Root}; recovering from any interrupted deploy", layout.Root);
        current.RemoveLeftovers();
        foreach (var id in store.RecoverInterrupted())
            progress.Warning($"release {id} was left unfinished by an interrupted deploy; marked failed");
        // `switched` is written before `current` moves, `went_live` once it has. A switched release that `current`
        // names went live (the deploy was killed after the switch); one it does not name and that never went live
        // was interrupted before or during its switch, never served, and must never become a rollback target.
        var live = current.Read();
        foreach (var record in store.List().Where(r => r.Status == ReleaseStatus.Switched && r.WentLive is null))
        {
            if (record.ReleaseId == live)
            {
                store.Save(record with { WentLive = DateTimeOffset.UtcNow });
                continue;
            }
            store.SetStatus(record, ReleaseStatus.Failed, "interrupted: its switch never completed, so it never served");
            progress.Warning($"release {record.Id} was being switched to by an interrupted deploy and never went live; marked failed");
        }
    }

    /// <summary>Removes what keep_releases lets go (failed releases never count); returns the ids removed.</summary>
    public IReadOnlyList<string> Prune(int keepReleases)
    {
        var releases = store.List();
        var selection = ReleasePlanner.PruneSelection(releases, current.Read(), keepReleases);
        _logger.LogDebug("prune: {Count} releases ({Statuses}), keep_releases {Keep}, removing [{Selection}]",
            releases.Count, string.Join(", ", releases.Select(r => $"{r.Id}={DeployPipeline.Status(r.Status)}")), keepReleases, string.Join(", ", selection));
        foreach (var id in selection) store.Remove(id);
        return selection.Select(id => id.Value).ToList();
    }

    /// <summary>
    /// The release a rollback from <paramref name="from"/> goes to: the one <paramref name="named"/>, or else the
    /// newest good release before it. Anything else is refused with the reason.
    /// </summary>
    public ReleaseRecord RollbackTarget(ReleaseId from, string? named)
    {
        if (named is null)
        {
            var releases = store.List();
            if (ReleasePlanner.RollbackTarget(releases, from) is { } target) return target;
            if (releases.Where(r => r.ReleaseId < from && r.Status == ReleaseStatus.Unreadable).MaxBy(r => r.ReleaseId) is { } unknown)
                throw new DeployException($"release {unknown.Id} may be the one to roll back to, but {unknown.Failure}; name the release: `cutover rollback <id>`");
            throw new DeployException($"there is no earlier good release to roll back to from {from}; `cutover releases` lists them");
        }
        if (!ReleaseId.TryParse(named, out var id))
            throw new InputException($"'{named}' is not a release id; `cutover releases` lists them");
        var record = store.Describe(id) ?? throw new InputException($"release {id} does not exist in {layout.Releases}; `cutover releases` lists them");
        if (record.Status == ReleaseStatus.Unreadable)
            throw new DeployException($"release {id} cannot be rolled back to: {record.Failure}");
        if (id == from) throw new InputException($"release {id} is already current");
        if (!record.IsComplete)
            throw new InputException($"release {id} is {DeployPipeline.Status(record.Status)} and cannot be rolled back to: {record.Failure}");
        return record;
    }

    /// <summary>The history line of a rollback; <paramref name="outcome"/> is success, failed or hook_failed.</summary>
    public void RecordRollback(DateTimeOffset started, ReleaseId from, ReleaseRecord target, string outcome, string? error, PhaseClock clock, DeployActor actor) =>
        history.Append(new HistoryEntry
        {
            Action = "rollback",
            Release = target.ReleaseId.Value,
            Revision = target.Revision,
            From = from.Value,
            User = actor.User,
            FleetDeploy = actor.FleetDeploy,
            Started = started,
            Finished = DateTimeOffset.UtcNow,
            Outcome = outcome,
            Error = error,
            PhaseSeconds = clock.Seconds,
        });

    /// <summary>The history line of a deploy, and the result the command renders.</summary>
    public DeployResult Finish(DateTimeOffset started, ReleaseId id, string? revision, ReleaseId? previous,
        DeployOutcome outcome, string? error, IReadOnlyList<string> pruned, PhaseClock clock, DeployActor actor)
    {
        history.Append(new HistoryEntry
        {
            Action = "deploy",
            Release = id.Value,
            Revision = revision,
            From = previous?.Value,
            User = actor.User,
            FleetDeploy = actor.FleetDeploy,
            Started = started,
            Finished = DateTimeOffset.UtcNow,
            Outcome = outcome.Word(),
            Error = error,
            PhaseSeconds = clock.Seconds,
        });
        return new DeployResult(outcome, id.Value, revision, previous?.Value, error, pruned, clock.Seconds);
    }

    /// <summary>
    /// Lint before anything is staged or updated: with lint: error, an error-level finding stops the deploy while
    /// nothing has changed; with warn, findings are shown and the deploy goes on.
    /// </summary>
    public async Task<MigrationLintOutcome?> LintMigrationsAsync(MigrationPhase? migrations, PhaseClock clock)
    {
        if (migrations is null || migrations.Config.Lint == MigrationLintLevel.Off) return null;
        MigrationLintOutcome? outcome = null;
        var blocking = migrations.Config.Lint == MigrationLintLevel.Error;
        var failure = await clock.RunCheckedAsync("lint", () =>
        {
            outcome = migrations.Lint();
            foreach (var f in outcome.Findings)
                progress.Warning($"{f.File}:{f.Line}:{f.Column}: {(f.Severity == Migrations.Lint.Severity.Error ? "error" : "warning")} [{f.Rule}] {f.Message}");
            return Task.FromResult(blocking && outcome.Errors > 0
                ? $"{outcome.Errors} error-level findings in the migrations ({migrations.Config.Dir}); `cutover migrations lint` shows the safe way for each"
                : null);
        }, () => $"{outcome!.Results.Count} files: {outcome.Errors} errors, {outcome.Warnings} warnings" + (outcome.SafetyAssured.Count > 0 ? $", {outcome.SafetyAssured.Count} safety-assured" : ""));
        if (failure is not null) throw new DeployException($"{failure}; nothing was deployed");
        return outcome;
    }

    /// <summary>The migrate phase: the files applied, or a <see cref="DeployException"/> naming the one that failed.</summary>
    public async Task<IReadOnlyList<string>> MigrateAsync(MigrationPhase migrations, PhaseClock clock, ReleaseId id, CancellationToken cancellationToken)
    {
        var result = await clock.RunAsync("migrate",
            () => migrations.RunAsync($"{Environment.UserName}@{Environment.MachineName} (release {id})", line => progress.Output("migrate", line), cancellationToken),
            r => r.Applied.Count == 0 ? "nothing pending" : $"applied {string.Join(", ", r.Applied)}");
        if (result.Error is not null)
            throw new DeployException($"migration failed: {result.Error}" + (result.Applied.Count > 0 ? $" (applied before it: {string.Join(", ", result.Applied)})" : ""));
        return result.Applied;
    }

    /// <summary>One stage's hooks, as a timed phase; a failing command throws <see cref="HookFailedException"/>.</summary>
    public async Task RunHooksAsync(PhaseClock clock, string stage, IReadOnlyList<string> commands, HookContext context, ReleaseLog log, CancellationToken cancellationToken)
    {
        if (commands.Count == 0) return;
        await clock.RunAsync(stage, () => _hooks.RunAsync(stage, commands, context, log.Write, cancellationToken),
            commands.Count == 1 ? "1 command" : $"{commands.Count} commands");
    }

    /// <summary>after_switch hooks, then the health check. Returns why the new release is not fit to serve, or null.</summary>
    public async Task<string?> VerifyAsync(CutoverConfig config, HttpClient http, PhaseClock clock, HookContext context, ReleaseLog log, CancellationToken cancellationToken)
    {
        try
        {
            await RunHooksAsync(clock, "after_switch", config.Hooks.AfterSwitch, context, log, cancellationToken);
        }
        catch (HookFailedException e)
        {
            return e.Message;
        }
        if (config.Health is not { } health) return null;
        var check = new HttpHealthCheck(http);
        var result = await clock.RunAsync("health",
            () => check.WaitHealthyAsync(health, (attempt, why) => log.Write("health", $"attempt {attempt}/{health.Retries}: {why}"), cancellationToken),
            r => r.Healthy ? $"{health.Url} answered {health.ExpectStatus} (attempt {r.Attempts})" : $"failed after {r.Attempts} attempts");
        return result.Healthy ? null : $"health check failed after {result.Attempts} attempts: {result.LastProblem}";
    }

    /// <summary>
    /// <see cref="VerifyAsync"/> as every strategy runs it once its release serves: whatever stops the checks counts
    /// as a problem, SIGINT/SIGTERM (cancelled) and an exception included, so the caller always takes the release
    /// back. <paramref name="after"/> names what made it live ("the switch"), <paramref name="undo"/> what the undo does.
    /// </summary>
    public async Task<(string? Problem, bool Cancelled)> CheckLiveAsync(CutoverConfig config, HttpClient http, PhaseClock clock, HookContext context, ReleaseLog log,
        string after, string undo, CancellationToken cancellationToken)
    {
        try
        {
            return (await VerifyAsync(config, http, clock, context, log, cancellationToken), false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            progress.Warning($"cancelled after {after}: {undo}");
            return ($"cancelled after {after}", true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return ($"the checks after {after} failed: {e.Message}", false);
        }
    }

    /// <summary>
    /// `current` back to <paramref name="previous"/> (or removed, when there was none), then after_rollback in the
    /// previous release; a failing after_rollback hook is a warning, the release is back either way.
    /// </summary>
    public async Task SwitchBackAsync(CutoverConfig config, PhaseClock clock, ReleaseId failed, ReleaseId? previous, ReleaseLog log, CancellationToken cancellationToken)
    {
        if (previous is null)
        {
            clock.Run("rollback", current.Remove, "removed current");
            return;
        }
        clock.Run("rollback", () => current.SwitchTo(previous), $"current: {failed} -> {previous}");
        var context = new HookContext(config.App, layout.Root, previous.Value, layout.ReleaseDir(previous), layout.ReleaseDir(failed), config.Hooks.Timeout)
            { AppVariables = ReleaseEnvironmentFile.Read(layout, previous)?.Variables ?? config.Environment.Variables };
        try
        {
            await RunHooksAsync(clock, "after_rollback", config.Hooks.AfterRollback, context, log, cancellationToken);
        }
        catch (HookFailedException e)
        {
            progress.Warning(e.Message);
        }
    }
}
