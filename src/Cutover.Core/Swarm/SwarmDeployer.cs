using Cutover.Config;
using Cutover.Containers;
using Cutover.Deploy;
using Cutover.History;
using Cutover.Locking;
using Cutover.Progress;
using Cutover.Releases;
using Docker.DotNet;

namespace Cutover.Swarm;

/// <summary>
/// strategy: swarm. A release is an image on one Swarm service; Cutover keeps the same records as for files
/// (releases/&lt;id&gt;/ holds only the image reference, `current` names the release the service runs) so that
/// `releases`, `rollback` and pruning work as they do elsewhere, and so that a rollback goes to the last release
/// Cutover saw succeed rather than to Swarm's single PreviousSpec, which after an automatic rollback is the
/// failed spec.
/// </summary>
public sealed class SwarmDeployer
{
    private readonly CutoverConfig _config;
    private readonly Config.SwarmConfig _swarm;
    private readonly IDeployProgress _progress;
    private readonly RootLayout _layout;
    private readonly ReleaseStore _store;
    private readonly CurrentLink _current;
    private readonly ReleaseBookkeeping _bookkeeping;

    public SwarmDeployer(CutoverConfig config, IDeployProgress progress)
    {
        _swarm = config.Swarm ?? throw new ArgumentException("strategy: swarm needs a swarm section", nameof(config));
        _config = config;
        _progress = progress;
        _layout = new RootLayout(config.Root);
        _store = new ReleaseStore(_layout);
        _current = new CurrentLink(_layout);
        _bookkeeping = new ReleaseBookkeeping(_layout, _store, _current, new HistoryLog(_layout), progress);
    }

    public async Task<DeployResult> DeployAsync(DeployRequest request, CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        foreach (var warning in _config.Warnings) _progress.Warning(warning);
        var image = request.Image ?? _swarm.Image;
        _current.EnsureSwitchable();
        _store.EnsureLayout(request.AdoptRoot);
        using var held = await DeployLock.AcquireAsync(_layout, request.LockWait, request.CommandLine, cancellationToken);
        _bookkeeping.Recover();

        var previous = _current.Read();
        var id = ReleaseId.Next(started, _store.AllIds());
        var record = new ReleaseRecord
        {
            Id = id.Value,
            Revision = request.Revision,
            Created = started,
            Status = ReleaseStatus.Staging,
            User = Environment.UserName,
            Source = image,
            Image = image,
            Spec = SwarmSpecBuilder.Summary(_swarm),
        };
        // Record first, then the directory, as for files: a crash in between leaves a record recovery drops.
        _store.Save(record);
        Directory.CreateDirectory(_layout.ReleaseDir(id));
        File.WriteAllText(Path.Combine(_layout.ReleaseDir(id), "image"), image + "\n");
        _progress.Info($"release {id}: service {_swarm.Service} -> {image}");

        var clock = new PhaseClock(_progress);
        SwarmUpdateOutcome? outcome = null;
        string? failure;
        try
        {
            failure = await clock.RunCheckedAsync("swarm", async () =>
            {
                outcome = await ApplyAsync(image, id.Value, _swarm.Update, cancellationToken);
                return outcome.Succeeded ? null : outcome.Describe(_swarm.Replicas);
            }, $"{_swarm.Replicas}/{_swarm.Replicas} tasks running {image}");
        }
        catch (OperationCanceledException)
        {
            // Only Cutover stops watching: Swarm goes on with the update by itself.
            _progress.Warning($"cancelled; Swarm goes on updating {_swarm.Service} without Cutover watching (`cutover status` shows where it is)");
            _store.SetStatus(record, ReleaseStatus.Failed, "cancelled while Swarm was updating the service");
            throw;
        }
        if (failure is not null)
        {
            _store.SetStatus(record, ReleaseStatus.Failed, failure);
            // Swarm's rollback (or a pause) leaves the service on, or partly on, the previous release, which stays current.
            var outcomeKind = outcome?.BackOnPrevious == true ? DeployOutcome.RolledBack : DeployOutcome.Failed;
            return _bookkeeping.Finish(started, id, request.Revision, previous, outcomeKind, failure, [], clock);
        }
        record = _store.SetStatus(record with { WentLive = DateTimeOffset.UtcNow }, ReleaseStatus.Switched); // the service already runs it
        _current.SwitchTo(id);
        _store.SetStatus(record, ReleaseStatus.Active);
        var pruned = clock.Run("prune", () => _bookkeeping.Prune(_config.KeepReleases), p => p.Count == 0 ? "nothing to remove" : $"removed {string.Join(", ", p)}");
        return _bookkeeping.Finish(started, id, request.Revision, previous, DeployOutcome.Success, null, pruned, clock);
    }

    /// <summary>
    /// Back to the newest release before the current one that Cutover recorded as good (or the one named), by updating
    /// the service to its image with the rollback config. Swarm's PreviousSpec is not used.
    /// </summary>
    public async Task<RollbackResult> RollbackAsync(RollbackRequest request, CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        if (!_store.Exists) throw new DeployException($"nothing has been deployed to {_layout.Root} yet");
        using var held = await DeployLock.AcquireAsync(_layout, request.LockWait, request.CommandLine, cancellationToken);
        _bookkeeping.Recover();

        var from = _current.Read() ?? throw new DeployException($"no release of {_swarm.Service} is recorded as current; nothing to roll back from");
        var target = _bookkeeping.RollbackTarget(from, request.Target);
        if (target.Image is null) throw new DeployException($"release {target.Id} has no image recorded");
        var to = target.ReleaseId;

        var clock = new PhaseClock(_progress);
        var failure = await clock.RunCheckedAsync("swarm", async () =>
        {
            _progress.Info($"rolling back {_swarm.Service} from {from} to {to} ({target.Image}) with the rollback config");
            // Swarm's rollback_config allows only pause/continue, which a plain update also accepts.
            var outcome = await ApplyAsync(target.Image, to.Value, _swarm.Rollback, cancellationToken);
            return outcome.Succeeded ? null : outcome.Describe(_swarm.Replicas);
        }, $"{_swarm.Replicas}/{_swarm.Replicas} tasks running {target.Image}");
        if (failure is null)
        {
            _current.SwitchTo(to);
            if (_store.Find(from) is { } left) _store.SetStatus(left, ReleaseStatus.RolledBack, "rolled back by " + Environment.UserName);
            _store.SetStatus(target, ReleaseStatus.Active);
        }
        _bookkeeping.RecordRollback(started, from, target, failure is null ? "success" : "failed", failure, clock);
        if (failure is not null) throw new DeployException($"rollback to {to} failed: {failure}");
        return new RollbackResult(from.Value, to.Value, target.Revision, null, clock.Seconds);
    }

    private async Task<SwarmUpdateOutcome> ApplyAsync(string image, string release, Config.SwarmUpdateConfig updateWith, CancellationToken cancellationToken)
    {
        using var client = DockerClientFactory.Create(_swarm.DockerHost);
        try
        {
            return await new SwarmServiceUpdater(client, _config, _progress).ApplyAsync(image, release, updateWith, cancellationToken);
        }
        catch (DockerApiException e)
        {
            // Refusals (a bad spec, a name taken, not a manager) as Docker words them.
            throw new DeployException($"docker refused: {e.ResponseBody?.Trim() ?? e.Message}");
        }
    }
}
