using Cutover.Releases;

namespace Cutover.Tests.Releases;

public class ReleasePlannerTests
{

    private static List<ReleaseRecord> Releases(params ReleaseStatus[] statuses)
    {
        var start = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        return statuses.Select((s, i) => new ReleaseRecord { Id = ReleaseId.Next(start.AddMinutes(i), []).Value, Created = start, Status = s }).ToList();
    }

    [Fact]
    public void A_paused_release_counts_only_after_current_and_the_newest_one_wins()
    {
        var releases = Releases(ReleaseStatus.Paused, ReleaseStatus.Active, ReleaseStatus.Paused, ReleaseStatus.Failed, ReleaseStatus.Paused);
        Assert.Equal(releases[4].Id, ReleasePlanner.PausedAfter(releases, releases[1].ReleaseId)?.Id);
        Assert.Null(ReleasePlanner.PausedAfter(releases, releases[4].ReleaseId));
        Assert.Null(ReleasePlanner.PausedAfter(Releases(ReleaseStatus.Active, ReleaseStatus.Failed), ReleaseId.Parse("20260101_000000")));
    }

    [Fact]
    public void Keeps_the_newest_successful_releases_and_removes_the_rest()
    {
        var releases = Releases(Enumerable.Repeat(ReleaseStatus.Active, 8).ToArray());
        var pruned = ReleasePlanner.PruneSelection(releases, releases[^1].ReleaseId, keep: 5);
        Assert.Equal(releases.Take(3).Select(r => r.ReleaseId), pruned);
    }

    [Fact]
    public void Failed_releases_never_count_toward_the_limit_and_are_removed()
    {
        // Deployer's testKeepReleases scenario: 3 good, 6 failing, 3 good, keep 3.
        var statuses = Enumerable.Repeat(ReleaseStatus.Active, 3)
            .Concat(Enumerable.Repeat(ReleaseStatus.Failed, 6))
            .Concat(Enumerable.Repeat(ReleaseStatus.Active, 3)).ToArray();
        var releases = Releases(statuses);
        var pruned = ReleasePlanner.PruneSelection(releases, releases[^1].ReleaseId, keep: 3).ToHashSet();
        var kept = releases.Where(r => !pruned.Contains(r.ReleaseId)).ToList();
        Assert.Equal(3, kept.Count);
        Assert.All(kept, r => Assert.Equal(ReleaseStatus.Active, r.Status));
        Assert.All(releases.Where(r => r.Status == ReleaseStatus.Failed), r => Assert.Contains(r.ReleaseId, pruned));
    }

    [Fact]
    public void After_many_failures_the_live_release_and_its_rollback_target_survive()
    {
        // Capistrano #1907: repeated failed deploys pushed the live release out.
        var releases = Releases([ReleaseStatus.Active, ReleaseStatus.Active, .. Enumerable.Repeat(ReleaseStatus.Failed, 10)]);
        var pruned = ReleasePlanner.PruneSelection(releases, releases[1].ReleaseId, keep: 1);
        Assert.DoesNotContain(releases[1].ReleaseId, pruned);
        Assert.DoesNotContain(releases[0].ReleaseId, pruned);
        Assert.Equal(10, pruned.Count);
    }

    [Fact]
    public void The_current_release_is_kept_even_when_older_than_the_newest_kept()
    {
        var releases = Releases(Enumerable.Repeat(ReleaseStatus.Active, 6).ToArray());
        // rolled back to the first one; keep 2 would otherwise drop it
        var pruned = ReleasePlanner.PruneSelection(releases, releases[0].ReleaseId, keep: 2);
        Assert.DoesNotContain(releases[0].ReleaseId, pruned);
        Assert.DoesNotContain(releases[5].ReleaseId, pruned);
        Assert.DoesNotContain(releases[4].ReleaseId, pruned);
    }

    [Fact]
    public void Rollback_target_skips_failed_and_rolled_back_releases()
    {
        var releases = Releases(ReleaseStatus.Active, ReleaseStatus.Active, ReleaseStatus.RolledBack, ReleaseStatus.Failed, ReleaseStatus.Active);
        var target = ReleasePlanner.RollbackTarget(releases, releases[4].ReleaseId);
        Assert.Equal(releases[1].ReleaseId, target!.ReleaseId);
    }

    [Fact]
    public void There_is_no_rollback_target_before_the_first_release()
    {
        var releases = Releases(ReleaseStatus.Active);
        Assert.Null(ReleasePlanner.RollbackTarget(releases, releases[0].ReleaseId));
    }

    [Fact]
    public void An_unreadable_release_is_never_pruned_and_never_counts_toward_the_limit()
    {
        var releases = Releases(ReleaseStatus.Unreadable, ReleaseStatus.Active, ReleaseStatus.Active, ReleaseStatus.Active, ReleaseStatus.Failed);
        var pruned = ReleasePlanner.PruneSelection(releases, releases[3].ReleaseId, keep: 1);
        Assert.DoesNotContain(releases[0].ReleaseId, pruned);
        Assert.Equal([releases[1].ReleaseId, releases[4].ReleaseId], pruned);
    }

    [Fact]
    public void An_unreadable_release_before_the_last_good_one_leaves_no_rollback_target_rather_than_a_guess()
    {
        var releases = Releases(ReleaseStatus.Active, ReleaseStatus.Unreadable, ReleaseStatus.Active);
        Assert.Null(ReleasePlanner.RollbackTarget(releases, releases[2].ReleaseId));
        // An unreadable release older than a good one does not matter.
        var older = Releases(ReleaseStatus.Unreadable, ReleaseStatus.Active, ReleaseStatus.Active);
        Assert.Equal(older[1].ReleaseId, ReleasePlanner.RollbackTarget(older, older[2].ReleaseId)?.ReleaseId);
    }
}
