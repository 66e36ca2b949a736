namespace Cutover.Releases;

/// <summary>The pure decisions about a root's releases: what to roll back to, and what to prune.</summary>
public static class ReleasePlanner
{
    /// <summary>
    /// The newest release older than <paramref name="current"/> that went live and was not rolled back from. None
    /// when an unreadable release comes first: it may have been that release, and skipping it would be a guess.
    /// </summary>
    public static ReleaseRecord? RollbackTarget(IReadOnlyList<ReleaseRecord> releases, ReleaseId? current) =>
        releases
            .Where(r => current is null || r.ReleaseId < current)
            .Where(r => r.Status is ReleaseStatus.Active or ReleaseStatus.Unreadable || r.Status is ReleaseStatus.Switched && r.WentLive is not null)
            .MaxBy(r => r.ReleaseId) is { Status: not ReleaseStatus.Unreadable } target ? target : null;

    /// <summary>
    /// The newest release a rolling deploy paused after <paramref name="current"/> (failure_action pause): instances of
    /// it serve beside `current`'s until a deploy goes on or a rollback puts them all back.
    /// </summary>
    public static ReleaseRecord? PausedAfter(IReadOnlyList<ReleaseRecord> releases, ReleaseId current) =>
        releases.Where(r => r.Status == ReleaseStatus.Paused && r.ReleaseId > current).MaxBy(r => r.ReleaseId);

    /// <summary>
    /// Releases to delete: every failed one, and complete ones beyond the newest <paramref name="keep"/>.
    /// The current release, its rollback target and any release whose record is unreadable are never deleted.
    /// </summary>
    public static IReadOnlyList<ReleaseId> PruneSelection(IReadOnlyList<ReleaseRecord> releases, ReleaseId? current, int keep)
    {
        var protectedIds = new HashSet<ReleaseId>();
        if (current is not null) protectedIds.Add(current);
        if (RollbackTarget(releases, current) is { } target) protectedIds.Add(target.ReleaseId);

        var kept = releases.Where(r => r.IsComplete).OrderByDescending(r => r.ReleaseId).Take(keep).Select(r => r.ReleaseId);
        protectedIds.UnionWith(kept);
        // An unreadable release is kept whatever its age: its record might have said it is the one to keep.
        protectedIds.UnionWith(releases.Where(r => r.Status == ReleaseStatus.Unreadable).Select(r => r.ReleaseId));
        return releases
            .Select(r => r.ReleaseId)
            .Where(id => !protectedIds.Contains(id))
            .OrderBy(id => id)
            .ToList();
    }
}
