using Cutover.Progress;
using Cutover.Releases;
using Cutover.Staging;

namespace Cutover.Deploy;

/// <summary>
/// What a strategy supplies to the <see cref="DeployPipeline"/>: how traffic moves to a staged release (the `current`
/// rename, the agent's instances, a Swarm service update), how that is undone, and how a rollback moves it to an
/// earlier release. Everything else (lock, stage, hooks, migrations, `current`, the checks after going live,
/// records, prune, history) is the pipeline's, the same for every strategy.
/// </summary>
public interface IReleaseActivation
{
    /// <summary>What moving traffic is called in messages: "the switch", "the service update".</summary>
    string Step { get; }

    /// <summary>
    /// True when <see cref="GoLiveAsync"/> makes the release serve by itself (instances, a service) and `current`
    /// follows a release that already serves; false when the pipeline's `current` rename is what makes it serve.
    /// It decides when the record turns `switched` (before the rename, or once traffic moved) and whether a failed
    /// rename has traffic to take back.
    /// </summary>
    bool MovesTrafficItself { get; }

    /// <summary>The release's record before it is first saved: what the strategy needs later (Swarm: image, spec).</summary>
    ReleaseRecord Describe(ReleaseRecord record) => record;

    /// <summary>
    /// Moves traffic to the staged release. <see cref="ActivationOutcome.Live"/>: it serves; any other outcome: it
    /// does not, and whatever moved was already put back (NotLive, RolledBack, Cancelled) or both releases serve
    /// (Paused); the error says why. Throws <see cref="OperationCanceledException"/> when cut off while traffic may be
    /// partly moved: the pipeline then runs <see cref="UndoAsync"/>.
    /// </summary>
    Task<ActivationResult> GoLiveAsync(PreparedRelease release, CancellationToken cancellationToken);

    /// <summary>
    /// Traffic back to the previous release (a first release: back to nothing) after it went live and failed its
    /// checks or was cancelled; `current` and after_rollback are the pipeline's. The pipeline passes no cancellation:
    /// a second signal must not leave an unverified release serving.
    /// </summary>
    Task<ActivationUndo> UndoAsync(PreparedRelease release, CancellationToken cancellationToken);

    /// <summary>
    /// migrations.pause: holds new requests in Cutover's proxy while the migrations run; disposing the hold resumes them
    /// (the pipeline does so in a finally, and the timeout ends the pause if the CLI dies). Null when nothing serves yet.
    /// Only strategies whose traffic passes through Cutover's proxy can; the config refuses the key for the others.
    /// </summary>
    Task<IAsyncDisposable?> HoldTrafficAsync(PreparedRelease release, TimeSpan timeout, CancellationToken cancellationToken) =>
        throw new DeployException($"migrations.pause needs traffic through Cutover's proxy, which {Step} does not use");

    /// <summary>`cutover rollback`: traffic to <paramref name="target"/>, an earlier complete release. Null, or why not.</summary>
    Task<string?> RollBackAsync(ReleaseId from, ReleaseRecord target, PhaseClock clock, CancellationToken cancellationToken);
}

/// <summary>
/// What an undo did. <paramref name="Back"/>: traffic is on the previous release (or on none, for a first release).
/// <paramref name="Note"/>: what the deploy's error adds after "switched back to ...", joined with "and" or "but" as
/// <paramref name="Back"/> says ("the instances could not be moved back: ...", "service web, which this deploy
/// created, was removed"), or null.
/// </summary>
public sealed record ActivationUndo(bool Back, string? Note = null)
{
    public static ActivationUndo Done { get; } = new(true);
}
