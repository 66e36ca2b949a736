using Cutover.Hooks;
using Cutover.Locking;
using Cutover.Migrations;
using Cutover.Progress;
using Cutover.Releases;
using Cutover.Staging;

namespace Cutover.Deploy;

/// <summary>
/// A release between <see cref="DeployPipeline.BeginAsync"/> and its switch or abort. It holds the root's deploy
/// lock and the release log; disposing it releases both, so whoever holds one holds the root.
/// </summary>
public sealed class PreparedRelease(
    DeployLock held, ReleaseLog log, PhaseClock clock, DateTimeOffset started, IArtifactSource source,
    ReleaseId id, string dir, string? revision, ReleaseId? previous, HookContext hookContext, MigrationLintOutcome? lint) : IDisposable
{
    public ReleaseId Id => id;
    public string Dir => dir;
    public ReleaseId? Previous => previous;
    public string? Revision => revision;
    public DateTimeOffset Started => started;
    public IArtifactSource Source => source;
    public required ReleaseRecord Record { get; set; }
    /// <summary>Who deploys it, for the record and history.</summary>
    public required DeployActor Actor { get; init; }
    internal PhaseClock Clock => clock;
    internal ReleaseLog Log => log;
    internal HookContext HookContext => hookContext;
    internal MigrationLintOutcome? Lint => lint;
    /// <summary>What staging wrote and how, for the dedupe pass before the switch; null until staged.</summary>
    internal StagedContent? Content { get; set; }

    public void Dispose()
    {
        log.Dispose();
        held.Dispose();
    }
}

/// <summary>
/// A staged release's content: the mode it was staged in, the files with their hashes and statx, what earlier releases
/// hold, and the moment after which a hook could have written (files whose ctime is not older are hashed again).
/// </summary>
internal sealed record StagedContent(StagingMode Mode, StageResult Staged, EarlierContent Earlier, long HooksStartedNs);
