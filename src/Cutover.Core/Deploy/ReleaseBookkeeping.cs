using Cutover.History;
using Cutover.Progress;
using Cutover.Releases;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Deploy;

/// <summary>
/// What every deployer of releases does around its own activation (the `current` switch, the agent, Swarm):
/// recover what an interrupted deploy left, prune to keep_releases, pick a rollback's target, and write the
/// history lines of deploys and rollbacks.
/// </summary>
public sealed class ReleaseBookkeeping(RootLayout layout, ReleaseStore store, CurrentLink current, HistoryLog history, IDeployProgress progress, ILogger? logger = null)
{
    private readonly ILogger _logger = logger ?? NullLogger.Instance;

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
            releases.Count, string.Join(", ", releases.Select(r => $"{r.Id}={ReleaseDeployer.Status(r.Status)}")), keepReleases, string.Join(", ", selection));
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
            throw new InputException($"release {id} is {ReleaseDeployer.Status(record.Status)} and cannot be rolled back to: {record.Failure}");
        return record;
    }

    /// <summary>The history line of a rollback; <paramref name="outcome"/> is success, failed or hook_failed.</summary>
    public void RecordRollback(DateTimeOffset started, ReleaseId from, ReleaseRecord target, string outcome, string? error, PhaseClock clock) =>
        history.Append(new HistoryEntry
        {
            Action = "rollback",
            Release = target.ReleaseId.Value,
            Revision = target.Revision,
            From = from.Value,
            User = Environment.UserName,
            Started = started,
            Finished = DateTimeOffset.UtcNow,
            Outcome = outcome,
            Error = error,
            PhaseSeconds = clock.Seconds,
        });

    /// <summary>The history line of a deploy, and the result the command renders.</summary>
    public DeployResult Finish(DateTimeOffset started, ReleaseId id, string? revision, ReleaseId? previous,
        DeployOutcome outcome, string? error, IReadOnlyList<string> pruned, PhaseClock clock)
    {
        history.Append(new HistoryEntry
        {
            Action = "deploy",
            Release = id.Value,
            Revision = revision,
            From = previous?.Value,
            User = Environment.UserName,
            Started = started,
            Finished = DateTimeOffset.UtcNow,
            Outcome = outcome.Word(),
            Error = error,
            PhaseSeconds = clock.Seconds,
        });
        return new DeployResult(outcome, id.Value, revision, previous?.Value, error, pruned, clock.Seconds);
    }
}
