using Cutover.Deploy;
using Cutover.Progress;
using Cutover.Releases;

namespace Cutover.Agent;

/// <summary>
/// strategies rolling and blue-green (and runtime: docker): the agent moves the app's instances through an
/// <see cref="IInstanceActivator"/>, and the pipeline's `current` follows once they serve the release.
/// </summary>
public sealed class AgentActivation(IInstanceActivator instances, RootLayout layout, IDeployProgress progress) : IReleaseActivation
{
    public string Step => "the switch";

    public bool MovesTrafficItself => true;

    public async Task<ActivationResult> GoLiveAsync(PreparedRelease release, CancellationToken cancellationToken)
    {
        ActivationResult moved;
        try
        {
            moved = await MoveAsync(release.Clock, release.Id, $"all instances on {release.Id}", cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The activator returns only once the agent has put every replaced instance back: nothing left to undo.
            return new ActivationResult(ActivationOutcome.Cancelled, "cancelled during the instances' move; every instance replaced so far was put back");
        }
        return moved.Outcome switch
        {
            // Instances of both releases serve; `current` stays on the previous one until every instance moved.
            ActivationOutcome.Paused => moved with
            {
                Error = $"{moved.Error}; paused with {moved.DescribeInstances()}: `cutover deploy` goes on with a new release, " +
                        $"`cutover rollback` puts every instance back on {release.Previous?.Value ?? "the previous release"}",
            },
            ActivationOutcome.Live => moved,
            _ => moved with { Error = moved.Error ?? "the instances did not move" },
        };
    }

    public async Task<IAsyncDisposable?> HoldTrafficAsync(PreparedRelease release, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var until = await release.Clock.RunAsync("pause", () => instances.PauseAsync(timeout, cancellationToken),
            u => u is { } at ? $"new requests held until resume (at most until {at:HH:mm:ss}Z)" : "nothing serves the app yet: no request to hold");
        return until is null ? null : new HeldTraffic(instances, release.Clock, progress);
    }

    /// <summary>The resume at the end of the migrations, whatever ended them: never cancelled, and a failure only warns (the pause's timeout ends it).</summary>
    private sealed class HeldTraffic(IInstanceActivator instances, PhaseClock clock, IDeployProgress progress) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            try
            {
                await clock.RunAsync("resume", () => instances.ResumeAsync(CancellationToken.None), "held requests released");
            }
            catch (Exception e) when (e is DeployException or IOException or HttpRequestException)
            {
                progress.Warning($"could not resume the app's traffic ({e.Message}); the pause ends at its timeout");
            }
        }
    }

    /// <summary>Every instance back on the previous release; a first release's instances stop.</summary>
    public async Task<ActivationUndo> UndoAsync(PreparedRelease release, CancellationToken cancellationToken)
    {
        var failure = release.Previous is { } previous
            ? (await MoveAsync(release.Clock, previous, $"all instances back on {previous}", cancellationToken)).Error
            : await release.Clock.RunCheckedAsync("instances", () => instances.StopAsync(progress, cancellationToken), "instances stopped: there is no earlier release");
        return failure is null ? ActivationUndo.Done : new ActivationUndo(false, $"the instances could not be moved back: {failure}");
    }

    public async Task<string?> RollBackAsync(ReleaseId from, ReleaseRecord target, PhaseClock clock, CancellationToken cancellationToken)
    {
        var moved = await MoveAsync(clock, target.ReleaseId, $"all instances on {target.ReleaseId}", cancellationToken);
        return moved.Succeeded ? null : moved.Error;
    }

    /// <summary>The agent moves every instance to a release; the phase `instances` is timed and reported.</summary>
    private async Task<ActivationResult> MoveAsync(PhaseClock clock, ReleaseId to, string success, CancellationToken cancellationToken)
    {
        ActivationResult? result = null;
        var failure = await clock.RunCheckedAsync("instances", async () =>
        {
            result = await instances.ActivateAsync(to.Value, layout.ReleaseDir(to), progress, cancellationToken);
            return result.Succeeded ? null : result.Error ?? $"the instances did not move ({result.Outcome})";
        }, success);
        // RunCheckedAsync turns a refused request (the agent gone, an I/O error) into its message.
        return result ?? ActivationResult.NotLive(failure ?? "the agent did not answer");
    }
}
