using Cutover.Config;
using Cutover.Containers;
using Cutover.Deploy;
using Cutover.Progress;
using Cutover.Releases;
using Cutover.Staging;

namespace Cutover.Swarm;

/// <summary>
/// strategy: swarm. A release is an image (releases/&lt;id&gt;/image, and the record's image and spec) and going live
/// is a service update that Swarm carries out; `current` then names the release the service runs, so `releases`,
/// `rollback` and pruning work as elsewhere. Undo and rollback update the service to the image of the last release
/// Cutover saw succeed, never to Swarm's single PreviousSpec, which after Swarm's own rollback is the failed spec.
/// One instance serves one command: it remembers whether this deploy created the service.
/// </summary>
public sealed class SwarmActivation(CutoverConfig config, ISwarmUpdater service, ReleaseStore store, IDeployProgress progress) : IReleaseActivation
{
    /// <summary>How often an update back retries when the update it replaces is still moving (version conflict).</summary>
    internal const int UpdateBackAttempts = 10;

    private SwarmConfig Swarm => config.SettingsOf<SwarmSettings>().Swarm;

    /// <summary>Set by <see cref="GoLiveAsync"/>: whether this deploy creates the service, which decides what undoing a first release means.</summary>
    private bool _createsService;

    public string Step => "the service update";

    public bool MovesTrafficItself => true;

    public ReleaseRecord Describe(ReleaseRecord record) => record with { Spec = SwarmSpecBuilder.Summary(Swarm) };

    public async Task<ActivationResult> GoLiveAsync(PreparedRelease release, CancellationToken cancellationToken)
    {
        var image = release.Record.Image!;
        try
        {
            _createsService = !await service.ServiceExistsAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return new ActivationResult(ActivationOutcome.Cancelled, "cancelled before the service update; the service was not touched");
        }
        catch (Exception e) when (e is DeployException or HttpRequestException or IOException)
        {
            return ActivationResult.NotLive(e.Message);
        }

        // From here a signal may arrive after the update was posted: it propagates, and the pipeline updates back.
        SwarmUpdateOutcome? outcome = null;
        var failure = await release.Clock.RunCheckedAsync("swarm", async () =>
        {
            outcome = await service.ApplyAsync(image, release.Id.Value, Swarm.Update, cancellationToken);
            return outcome.Succeeded ? null : outcome.Describe(Swarm.Replicas);
        }, $"{Swarm.Replicas}/{Swarm.Replicas} tasks running {image}");
        if (failure is null) return ActivationResult.Live;
        // Swarm's rollback (or a pause) leaves the service on, or partly on, the previous release, which stays current.
        return new ActivationResult(outcome?.BackOnPrevious == true ? ActivationOutcome.RolledBack : ActivationOutcome.NotLive, failure);
    }

    /// <summary>
    /// The service to the previous release's image with swarm.rollback, as `cutover rollback` would; for a first
    /// release, the service goes if this deploy created it, else Swarm's PreviousSpec (what ran before Cutover) returns.
    /// </summary>
    public async Task<ActivationUndo> UndoAsync(PreparedRelease release, CancellationToken cancellationToken)
    {
        var clock = release.Clock;
        if (release.Previous is { } previous && store.Find(previous) is { Image: { } previousImage })
        {
            var failure = await clock.RunCheckedAsync("swarm", () => UpdateBackAsync(previousImage, previous, cancellationToken), $"{Swarm.Replicas}/{Swarm.Replicas} tasks back on {previousImage}");
            return failure is null ? ActivationUndo.Done : new ActivationUndo(false, $"the service could not be updated back to {previous}: {failure}");
        }
        if (_createsService)
        {
            var failure = await clock.RunCheckedAsync("swarm", async () => { await service.RemoveServiceAsync(cancellationToken); return null; },
                $"removed service {Swarm.Service}: there is no earlier release");
            return failure is null
                ? new ActivationUndo(true, $"service {Swarm.Service}, which this deploy created, was removed")
                : new ActivationUndo(false, $"service {Swarm.Service}, which this deploy created, could not be removed: {failure}");
        }
        var restored = await clock.RunCheckedAsync("swarm", async () => { await service.RestorePreviousSpecAsync(cancellationToken); return null; },
            $"asked Swarm to put back the spec {Swarm.Service} had before Cutover");
        return restored is null
            ? new ActivationUndo(true, $"Swarm was asked to put back the spec {Swarm.Service} had before Cutover")
            : new ActivationUndo(false, $"Swarm could not be asked to put back the spec {Swarm.Service} had before Cutover: {restored}");
    }

    /// <summary>Back to the release Cutover recorded as good (or the one named) with the rollback config.</summary>
    public async Task<string?> RollBackAsync(ReleaseId from, ReleaseRecord target, PhaseClock clock, CancellationToken cancellationToken)
    {
        if (target.Image is not { } image) return $"release {target.Id} has no image recorded";
        return await clock.RunCheckedAsync("swarm", async () =>
        {
            progress.Info($"rolling back {Swarm.Service} from {from} to {target.Id} ({image}) with the rollback config");
            // Swarm's rollback_config allows only pause/continue, which a plain update also accepts.
            var outcome = await service.ApplyAsync(image, target.Id, Swarm.Rollback, cancellationToken);
            return outcome.Succeeded ? null : outcome.Describe(Swarm.Replicas);
        }, $"{Swarm.Replicas}/{Swarm.Replicas} tasks running {image}");
    }

    /// <summary>
    /// The update back to <paramref name="previous"/>. The update it replaces may still be moving (Swarm bumps the
    /// service's version as it goes), so a version conflict is read again and retried, a bounded number of times.
    /// </summary>
    private async Task<string?> UpdateBackAsync(string previousImage, ReleaseId previous, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var back = await service.ApplyAsync(previousImage, previous.Value, Swarm.Rollback, cancellationToken);
                return back.Succeeded ? null : back.Describe(Swarm.Replicas);
            }
            catch (DeployException e) when (attempt < UpdateBackAttempts && e.Message.Contains("update out of sequence", StringComparison.Ordinal))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken);
            }
            catch (Exception e) when (e is DeployException or HttpRequestException or IOException or TimeoutException)
            {
                // Said in the result (record failed, exit 1), never thrown past the records: the deploy must end recorded.
                return e.Message;
            }
        }
    }
}
