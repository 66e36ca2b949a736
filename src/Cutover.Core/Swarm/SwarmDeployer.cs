using Cutover.Config;
using Cutover.Containers;
using Cutover.Deploy;
using Cutover.History;
using Cutover.Hooks;
using Cutover.Migrations;
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

    private readonly HttpClient? _http;
    private readonly MigrationPhase? _migrations;

    /// <param name="http">For health.url after the update; a deploy makes its own when none is given (rollback needs none).</param>
    /// <param name="environment">Where database_url_env is looked up; the process environment by default.</param>
    public SwarmDeployer(CutoverConfig config, IDeployProgress progress, HttpClient? http = null, Func<string, string?>? environment = null)
    {
        _swarm = config.SettingsOf<SwarmSettings>().Swarm;
        _config = config;
        _progress = progress;
        _http = http;
        _migrations = config.Migrations is { } migrations ? new MigrationPhase(migrations, environment ?? Environment.GetEnvironmentVariable) : null;
        _layout = new RootLayout(config.Root);
        _store = new ReleaseStore(_layout);
        _current = new CurrentLink(_layout);
        _bookkeeping = new ReleaseBookkeeping(_layout, _store, _current, new HistoryLog(_layout), progress);
    }

    /// <summary>
    /// The pipeline of the other strategies with the service update as its activation: lint, lock, record,
    /// migrate, before_switch, the update, after_switch and health.url; a failure or SIGINT/SIGTERM after the update
    /// began updates the service back to the previous release's image and runs after_rollback. Hooks run where
    /// `cutover deploy` runs, in releases/&lt;id&gt;/ (which holds the `image` file).
    /// </summary>
    public async Task<DeployResult> DeployAsync(DeployRequest request, CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        foreach (var warning in _config.Warnings) _progress.Warning(warning);
        var image = request.Image ?? _swarm.Image;
        _current.EnsureSwitchable();
        _store.EnsureLayout(request.AdoptRoot);
        var clock = new PhaseClock(_progress);
        // As for files: an error-level finding stops the deploy before the lock, a record or the service is touched.
        var lint = await _bookkeeping.LintMigrationsAsync(_migrations, clock);
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
        var releaseDir = _layout.ReleaseDir(id);
        Directory.CreateDirectory(releaseDir);
        File.WriteAllText(Path.Combine(releaseDir, "image"), image + "\n");
        _progress.Info($"release {id}: service {_swarm.Service} -> {image}");
        using var log = new ReleaseLog(_layout.LogFile(id), _progress);
        var hookContext = new HookContext(_config.App, _layout.Root, id.Value, releaseDir, previous is null ? null : _layout.ReleaseDir(previous), _config.Hooks.Timeout);

        // Before the update, as before the switch: the new tasks must start on the schema they need.
        bool createdService;
        try
        {
            if (_migrations is not null)
            {
                var applied = await _bookkeeping.MigrateAsync(_migrations, clock, id, cancellationToken);
                record = record with { Migrations = applied, SafetyAssured = lint?.SafetyAssured is { Count: > 0 } notes ? notes : null };
                _store.Save(record);
            }
            await _bookkeeping.RunHooksAsync(clock, "before_switch", _config.Hooks.BeforeSwitch, hookContext, log, cancellationToken);
            // Whether this deploy creates the service decides what undoing a first release means.
            createdService = !await ServiceExistsAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            const string why = "cancelled before the service update; the service was not touched";
            _progress.Warning(why);
            _store.SetStatus(record, ReleaseStatus.Cancelled, why);
            return _bookkeeping.Finish(started, id, request.Revision, previous, DeployOutcome.Cancelled, why, [], clock);
        }
        catch (DeployException e)
        {
            _store.SetStatus(record, ReleaseStatus.Failed, e.Message);
            return _bookkeeping.Finish(started, id, request.Revision, previous, DeployOutcome.Failed, e.Message, [], clock);
        }

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
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The update began: like a failure after the switch, the service goes back to the last good release.
            _progress.Warning($"cancelled during the service update: putting {_swarm.Service} back on {(previous is null ? "no release" : previous.Value)}");
            return await UndoAsync(started, record, previous, createdService, "cancelled during the service update", cancelled: true, log, clock);
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

        // The checks every strategy runs once the release serves; whatever stops them takes the service back.
        string? problem;
        bool cancelled;
        using (var ownHttp = _http is null ? new HttpClient() : null)
            (problem, cancelled) = await _bookkeeping.CheckLiveAsync(_config, _http ?? ownHttp!, clock, hookContext, log, "the service update",
                $"putting {_swarm.Service} back on {(previous is null ? "no release" : previous.Value)}", cancellationToken);
        if (problem is not null) return await UndoAsync(started, record, previous, createdService, problem, cancelled, log, clock);

        _store.SetStatus(record, ReleaseStatus.Active);
        var pruned = clock.Run("prune", () => _bookkeeping.Prune(_config.KeepReleases), p => p.Count == 0 ? "nothing to remove" : $"removed {string.Join(", ", p)}");
        return _bookkeeping.Finish(started, id, request.Revision, previous, DeployOutcome.Success, null, pruned, clock);
    }

    /// <summary>
    /// Takes the update back, as `cutover rollback` would: the service to the previous release's image with the
    /// rollback config (removed, when this deploy created it), then `current` and after_rollback. Not cancellable:
    /// a second signal must not leave an unverified image running behind a non-zero exit.
    /// </summary>
    private async Task<DeployResult> UndoAsync(DateTimeOffset started, ReleaseRecord record, ReleaseId? previous, bool createdService, string problem, bool cancelled, ReleaseLog log, PhaseClock clock)
    {
        var id = record.ReleaseId;
        string? undone;
        var back = true;
        if (previous is not null && _store.Find(previous) is { Image: { } previousImage })
        {
            var failure = await clock.RunCheckedAsync("swarm", () => UpdateBackAsync(previousImage, previous), $"{_swarm.Replicas}/{_swarm.Replicas} tasks back on {previousImage}");
            back = failure is null;
            // The result names the release the service is back on; only what it does not say goes into the error.
            undone = back ? null : $"but the service could not be updated back to {previous}: {failure}";
        }
        else if (createdService)
        {
            // A first release has nothing to go back to: the service this deploy created goes, as a first release's instances stop.
            await clock.RunAsync("swarm", () => RemoveServiceAsync(CancellationToken.None), $"removed service {_swarm.Service}: there is no earlier release");
            undone = $"there was no earlier release, so service {_swarm.Service} was removed";
        }
        else
        {
            // The service ran before Cutover's first release here: Swarm's PreviousSpec is exactly what ran before.
            await clock.RunAsync("swarm", () => RollbackToPreviousSpecAsync(CancellationToken.None), $"asked Swarm to put back the spec {_swarm.Service} had before Cutover");
            undone = $"there was no earlier release, so Swarm was asked to put back the spec {_swarm.Service} had before Cutover";
        }
        await _bookkeeping.SwitchBackAsync(_config, clock, id, previous, log, CancellationToken.None);
        _store.SetStatus(record, cancelled ? ReleaseStatus.Cancelled : ReleaseStatus.Failed, problem);
        var outcome = cancelled ? DeployOutcome.Cancelled : back ? DeployOutcome.RolledBack : DeployOutcome.Failed;
        var error = undone is null ? problem : $"{problem}; {undone}";
        return _bookkeeping.Finish(started, id, record.Revision, previous, outcome, error, [], clock);
    }

    /// <summary>
    /// The update back to <paramref name="previous"/>. The update it replaces may still be moving (Swarm bumps the
    /// service's version as it goes), so a version conflict is read again and retried, a bounded number of times.
    /// </summary>
    private async Task<string?> UpdateBackAsync(string previousImage, ReleaseId previous)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var back = await ApplyAsync(previousImage, previous.Value, _swarm.Rollback, CancellationToken.None);
                return back.Succeeded ? null : back.Describe(_swarm.Replicas);
            }
            catch (DeployException e) when (attempt < 10 && e.Message.Contains("update out of sequence", StringComparison.Ordinal))
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200));
            }
            catch (Exception e) when (e is DeployException or HttpRequestException or IOException or TimeoutException)
            {
                // Said in the result (record failed, exit 1), never thrown past the records: the deploy must end recorded.
                return e.Message;
            }
        }
    }

    private Task<bool> ServiceExistsAsync(CancellationToken cancellationToken) =>
        WithDockerAsync(async client => await SwarmServiceUpdater.InspectAsync(client, _swarm.Service, cancellationToken) is not null);

    private async Task RollbackToPreviousSpecAsync(CancellationToken cancellationToken)
    {
        using var client = DockerClientFactory.Create(_swarm.DockerHost);
        var now = await client.Swarm.InspectServiceAsync(_swarm.Service, cancellationToken);
        await client.Swarm.UpdateServiceAsync(now.ID, new Docker.DotNet.Models.ServiceUpdateParameters { Service = now.Spec!, Version = (long)(now.Version?.Index ?? 0), Rollback = "previous" }, cancellationToken);
    }

    private async Task RemoveServiceAsync(CancellationToken cancellationToken)
    {
        using var client = DockerClientFactory.Create(_swarm.DockerHost);
        try
        {
            await client.Swarm.RemoveServiceAsync(_swarm.Service, cancellationToken);
        }
        catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
        }
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

    private Task<SwarmUpdateOutcome> ApplyAsync(string image, string release, Config.SwarmUpdateConfig updateWith, CancellationToken cancellationToken) =>
        WithDockerAsync(client => new SwarmServiceUpdater(client, _config, _progress).ApplyAsync(image, release, updateWith, cancellationToken));

    /// <summary>A call on the Engine API, its refusals (a bad spec, a name taken, not a manager) as Docker words them.</summary>
    private async Task<T> WithDockerAsync<T>(Func<DockerClient, Task<T>> call)
    {
        using var client = DockerClientFactory.Create(_swarm.DockerHost);
        try
        {
            return await call(client);
        }
        catch (DockerApiException e)
        {
            throw new DeployException($"docker refused: {e.ResponseBody?.Trim() ?? e.Message}");
        }
    }
}
