using Cutover.History;
using Cutover.Locking;

namespace Cutover.Releases;

/// <summary>A read-only look at a root, for `cutover releases` and `cutover status`. Takes no lock.</summary>
public sealed record RootSnapshot(
    string Root,
    ReleaseId? Current,
    IReadOnlyList<ReleaseRecord> Releases,
    ReleaseRecord? RollbackTarget,
    HistoryEntry? LastAction,
    LockHolder? LockHolder)
{
    public static RootSnapshot Read(RootLayout layout)
    {
        var store = new ReleaseStore(layout);
        if (!store.Exists) return new RootSnapshot(layout.Root, null, [], null, null, null);
        var current = new CurrentLink(layout).Read();
        var releases = store.List();
        return new RootSnapshot(
            layout.Root,
            current,
            releases,
            ReleasePlanner.RollbackTarget(releases, current),
            new HistoryLog(layout).ReadLast(),
            DeployLock.CurrentHolder(layout));
    }

    public ReleaseRecord? CurrentRecord => Current is null ? null : Releases.FirstOrDefault(r => r.ReleaseId == Current);
}
