using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Cutover.Config;
using Cutover.Health;
using Cutover.History;
using Cutover.Hooks;
using Cutover.Locking;
using Cutover.Migrations;
using Cutover.Progress;
using Cutover.Releases;
using Cutover.Shared;
using Cutover.Staging;

namespace Cutover.Deploy;

/// <summary>
/// The one deploy every strategy runs, as a list of small named steps (the phases a deploy reports):
/// <code>
///   lint, lock, recover, record     BeginAsync
///   stage, shared, build            StageAsync
///   migrate                         MigrateAsync
///   before_switch, dedupe           BeforeSwitchAsync
///   activate                        ActivateAsync: the strategy's GoLive, then `current` follows
///   after_switch, health            ActivateAsync: the checks after going live
///   record-live, prune, history     ActivateAsync
///   on failure before activate:     Abort (record failed or cancelled, history); nothing live changed
///   on failure, a throw or a signal
///   once activate has begun:        the strategy's Undo, `current` back, after_rollback (TakeBackAsync)
/// </code>
/// A strategy supplies only its <see cref="IReleaseActivation"/> (how traffic moves to a release and back, and for
/// Swarm what a release is: an image); a fleet host runs the same steps one request at a time (Fleet/RemoteSession).
/// </summary>
public sealed class DeployPipeline
{
    private readonly CutoverConfig _config;
    private readonly IDeployProgress _progress;
    private readonly HttpClient _http;
    private readonly RootLayout _layout;
    private readonly ReleaseStore _store;
    private readonly CurrentLink _current;
    private readonly HistoryLog _history;
    private readonly ReleaseBookkeeping _bookkeeping;
    private readonly Redactor _redactor;
    private readonly ILogger _logger;

    private readonly IReleaseActivation _activation;
    private readonly MigrationPhase? _migrations;

    /// <param name="activation">The strategy's step; <see cref="ReleaseActivations.For"/> picks it when none is given (symlink, swarm).</param>
    /// <param name="environment">Where database_url_env is looked up; the process environment by default.</param>
    public DeployPipeline(CutoverConfig config, IDeployProgress progress, HttpClient http, IReleaseActivation? activation = null, ILogger<DeployPipeline>? logger = null,
        Func<string, string?>? environment = null)
    {
        // Secrets (env_file, ${VAR}) become *** in everything the deploy reports and writes: progress, the release log,
        // records and history.
        var redactor = ReleaseEnvironmentFile.RedactorFor(config.Root, config.Environment);
        progress = RedactingProgress.Wrap(progress, redactor);
        // database_url_env is looked up in the app's own environment first (env, env_file): the migrations must reach
        // the database the release will use.
        _migrations = config.Migrations is { } migrations
            ? new MigrationPhase(migrations, environment ?? (name => config.Environment.Variables.GetValueOrDefault(name) ?? Environment.GetEnvironmentVariable(name)))
            : null;
        _activation = activation ?? ReleaseActivations.For(config, progress);
        _logger = logger ?? NullLogger<DeployPipeline>.Instance;
        _config = config;
        _progress = progress;
        _http = http;
        _layout = new RootLayout(config.Root);
        _redactor = redactor;
        _store = new ReleaseStore(_layout, redactor);
        _current = new CurrentLink(_layout);
        _history = new HistoryLog(_layout, redactor);
        _bookkeeping = new ReleaseBookkeeping(_layout, _store, _current, _history, progress, _logger);
    }

    public async Task<DeployResult> DeployAsync(DeployRequest request, CancellationToken cancellationToken)
    {
        foreach (var warning in _config.Warnings) _progress.Warning(warning);
        // The strategy (its runtime) says what a release is: an image, or a directory or a tarball of files.
        var (source, image) = request.Release ?? _config.Settings.OpenRelease(request.Source, request.Image, _layout.Root);
        if (image is null && !request.AllowEmpty) ArtifactSource.RefuseEmpty(source, "the live release", cancellationToken);
        var revision = request.Revision ?? image ?? await ArtifactSource.GitRevisionAsync(request.Source, cancellationToken);
        using var prepared = await BeginAsync(source, revision, request.LockWait, request.CommandLine, cancellationToken, adoptRoot: request.AdoptRoot, actor: request.Actor);
        try
        {
            await StageAsync(prepared, cancellationToken);
            await MigrateAsync(prepared, cancellationToken);
            await BeforeSwitchAsync(prepared, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            _progress.Warning("cancelled before the switch; the live release was not touched");
            return Abort(prepared, "cancelled before the switch", removeRelease: false, cancelled: true);
        }
        catch (DeployException e) when (e is not ArtifactException)
        {
            return Abort(prepared, e.Message, removeRelease: false);
        }
        return await ActivateAsync(prepared, cancellationToken);
    }

    /// <summary>
    /// The first step of a deploy, shared by a local deploy and a fleet host's remote session: lint the migrations,
    /// take the root's lock (held until the returned release is disposed), recover, and write the staging record.
    /// Nothing live changes until <see cref="ActivateAsync"/>.
    /// </summary>
    /// <param name="startedAt">The deploy's start; a fleet passes one time to every host so their release ids agree.</param>
    /// <param name="adoptRoot">Deploy into a non-empty root Cutover did not create (`--adopt-root`).</param>
    /// <param name="actor">Who deploys (a fleet host gets the deploying user from the CLI); the OS user by default.</param>
    public async Task<PreparedRelease> BeginAsync(IArtifactSource source, string? revision, TimeSpan lockWait, string commandLine, CancellationToken cancellationToken,
        DateTimeOffset? startedAt = null, bool adoptRoot = false, DeployActor? actor = null)
    {
        actor ??= DeployActor.Local();
        var started = startedAt ?? DateTimeOffset.UtcNow;
        // `current` first: a hand-made directory there gets its own advice, before any root check or write.
        _current.EnsureSwitchable();
        _store.EnsureLayout(adoptRoot);
        var clock = new PhaseClock(_progress);
        var lint = await LintMigrationsAsync(clock);

        var held = await DeployLock.AcquireAsync(_layout, lockWait, commandLine, cancellationToken);
        try
        {
            _bookkeeping.Recover();
            var previous = _current.Read();
            var id = ReleaseId.Next(started, _store.AllIds());
            var releaseDir = _layout.ReleaseDir(id);
            var record = _activation.Describe(new ReleaseRecord
            {
                Id = id.Value,
                Revision = revision,
                Created = started,
                Status = ReleaseStatus.Staging,
                User = actor.User,
                Source = source.Description,
                Image = source.Image,
            });
            // The record comes first: a crash before the directory exists leaves a record that recovery drops.
            _store.Save(record);
            // Before the directory: a release never exists without the environment it is to run with.
            ReleaseEnvironmentFile.Write(_layout, id, _config.Environment);
            Directory.CreateDirectory(releaseDir);
            _progress.Info($"release {id}{(revision is null ? "" : $" ({Short(revision)})")} from {source.Description}");

            var log = new ReleaseLog(_layout.LogFile(id), _progress, _redactor);
            var previousDir = previous is null ? null : _layout.ReleaseDir(previous);
            var hookContext = new HookContext(_config.App, _layout.Root, id.Value, releaseDir, previousDir, _config.Hooks.Timeout) { AppVariables = _config.Environment.Variables };
            return new PreparedRelease(held, log, clock, started, source, id, releaseDir, revision, previous, hookContext, lint) { Record = record, Actor = actor };
        }
        catch
        {
            held.Dispose();
            throw;
        }
    }

    /// <summary>stage, shared and build. Throws <see cref="DeployException"/> (or cancellation) when the release cannot go live.</summary>
    public async Task StageAsync(PreparedRelease prepared, CancellationToken cancellationToken)
    {
        var clock = prepared.Clock;
        var linkBase = LinkBase(prepared.Previous);
        // Hooks run inside the new release before the switch; a file they could write in place must not be an inode
        // another release (the live one above all) also uses, so with hooks sharing waits until they are done.
        var mode = _config.Hooks.Build.Count > 0 || _config.Hooks.BeforeSwitch.Count > 0 ? StagingMode.PrivateCopies : StagingMode.LinkIdentical;
        _logger.LogDebug("staging {Source} into {ReleaseDir} ({Mode}); identical content is looked up in {LinkBase} first", prepared.Source.Description, prepared.Dir, mode,
            linkBase is null ? "(none: first release)" : _layout.ReleaseDir(linkBase));
        EarlierContent earlier = EarlierContent.None;
        StageResult staged;
        try
        {
            staged = clock.Run("stage", () =>
                {
                    earlier = EarlierContent.Load(_layout, linkBase, _store.List().Select(r => r.ReleaseId).Where(id => id != prepared.Id));
                    return new ReleaseStager().Stage(prepared.Source, prepared.Dir, earlier, mode, cancellationToken);
                },
                r => mode == StagingMode.LinkIdentical
                    ? $"{r.Files} files, {r.LinkedFiles} shared with earlier releases, {r.CopiedFiles} written ({FormatBytes(r.CopiedBytes)})"
                    : $"{r.Files} files, {r.CopiedFiles} written as the release's own copies while hooks run ({FormatBytes(r.CopiedBytes)}); identical ones are shared after the hooks");
        }
        catch (ArtifactException)
        {
            // Bad input changes nothing: the half-written release goes, as if the deploy never started.
            _store.Remove(prepared.Id);
            throw;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The machine refused a write (permissions, a full disk): a failed deploy with the reason, recorded as such.
            throw new DeployException($"staging failed: {e.Message}", e);
        }
        prepared.Content = new StagedContent(mode, staged, earlier, mode == StagingMode.PrivateCopies ? ContentIndex.Now(_layout) : 0);
        clock.Run("shared", () => new SharedLinker(_layout).Link(_config.Shared, prepared.Dir),
            o => o.Linked.Count == 0 ? "none" : $"{o.Linked.Count} linked" + (o.Seeded.Count > 0 ? $", seeded {string.Join(", ", o.Seeded)}" : ""));
        if (mode == StagingMode.LinkIdentical) SaveContentIndex(prepared.Id, staged);
        await RunHooksAsync(clock, "build", _config.Hooks.Build, prepared.HookContext, prepared.Log, cancellationToken);
    }

    /// <summary>The migrations, when configured; after the build hooks, before before_switch.</summary>
    public async Task MigrateAsync(PreparedRelease prepared, CancellationToken cancellationToken)
    {
        if (_migrations is null) return;
        // migrations.pause: the strategy holds new requests while the migrations take their locks; the resume is in the
        // hold's dispose, so a failed or cancelled migration never leaves the app paused.
        await using var held = _config.Migrations is { Pause: true } settings
            ? await _activation.HoldTrafficAsync(prepared, settings.PauseTimeout, cancellationToken)
            : null;
        var applied = await MigrateAsync(prepared.Clock, prepared.Id, cancellationToken);
        prepared.Record = prepared.Record with { Migrations = applied, SafetyAssured = prepared.Lint?.SafetyAssured is { Count: > 0 } notes ? notes : null };
        _store.Save(prepared.Record);
    }

    /// <summary>before_switch hooks, then (when the release was staged with private copies) the dedupe pass.</summary>
    public async Task BeforeSwitchAsync(PreparedRelease prepared, CancellationToken cancellationToken)
    {
        await RunHooksAsync(prepared.Clock, "before_switch", _config.Hooks.BeforeSwitch, prepared.HookContext, prepared.Log, cancellationToken);
        if (prepared.Content is { Mode: StagingMode.PrivateCopies } content)
        {
            var result = prepared.Clock.Run("dedupe",
                () => ReleaseDeduper.Dedupe(prepared.Dir, content.Staged.Content, content.HooksStartedNs, content.Earlier, cancellationToken),
                d => $"{d.Files} files, {d.SharedFiles} shared with earlier releases, {d.OwnFiles} the release's own ({FormatBytes(d.OwnBytes)})");
            _logger.LogDebug("dedupe hashed {Rehashed} files again (changed since staging, or staged in the clock tick the hooks started)", result.Rehashed);
            ContentIndex.Save(_layout, prepared.Id, result.Hashes);
        }
    }

    /// <summary>
    /// The index of a release staged with links: what staging hashed, less the paths the shared phase turned into
    /// symlinks. Nothing else ran in the release, so the hashes are its content.
    /// </summary>
    private void SaveContentIndex(ReleaseId id, StageResult staged)
    {
        var sharedPaths = _config.Shared.Dirs.Concat(_config.Shared.Files).ToArray();
        var hashes = new Dictionary<string, string>(staged.Content.Count, StringComparer.Ordinal);
        foreach (var (path, file) in staged.Content)
            if (!sharedPaths.Any(s => path == s || path.StartsWith(s + "/", StringComparison.Ordinal)))
                hashes[path] = file.Sha256;
        ContentIndex.Save(_layout, id, hashes);
    }

    /// <summary>
    /// Gives up on a release before its switch: record -> failed, history. A fleet removes the staged directory too,
    /// so an aborted fleet deploy leaves no trace but the record; a local deploy keeps it for inspection.
    /// </summary>
    public DeployResult Abort(PreparedRelease prepared, string error, bool removeRelease, bool cancelled = false)
    {
        prepared.Record = _store.SetStatus(prepared.Record, cancelled ? ReleaseStatus.Cancelled : ReleaseStatus.Failed, error);
        if (removeRelease) _store.Remove(prepared.Id);
        return _bookkeeping.Finish(prepared.Started, prepared.Id, prepared.Revision, prepared.Previous, cancelled ? DeployOutcome.Cancelled : DeployOutcome.Failed, error, [], prepared.Clock, prepared.Actor);
    }

    /// <summary>activate, after_switch, health, record-live, prune, history; on a failure after going live, the undo.</summary>
    public async Task<DeployResult> ActivateAsync(PreparedRelease prepared, CancellationToken cancellationToken)
    {
        var (clock, id, previous) = (prepared.Clock, prepared.Id, prepared.Previous);

        // activate: the strategy moves traffic (nothing for symlink; the agent's instances; the Swarm service), then
        // `current` follows. A strategy that was cut off mid-way throws the cancellation: whatever moved goes back.
        // Marked before the rename when the rename is what makes it serve: a crash between the two leaves a complete,
        // unswitched release, never a live one that recovery would take for an interrupted staging.
        if (!_activation.MovesTrafficItself) prepared.Record = _store.SetStatus(prepared.Record, ReleaseStatus.Switched);
        ActivationResult moved;
        try
        {
            moved = await _activation.GoLiveAsync(prepared, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            var why = $"cancelled during {_activation.Step}";
            _progress.Warning($"{why}: {UndoPlan(previous)}");
            return await TakeBackAsync(prepared, why, cancelled: true);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A strategy that throws may have moved part of the traffic: take it back rather than leave it unknown.
            var why = $"{_activation.Step} failed: {e.Message}";
            _progress.Warning($"{why}: {UndoPlan(previous)}");
            return await TakeBackAsync(prepared, why, cancelled: false);
        }
        if (!moved.Succeeded) return NotLive(prepared, moved);
        // The instances or the service already serve it: it went live before `current` follows.
        if (_activation.MovesTrafficItself) prepared.Record = _store.SetStatus(prepared.Record with { WentLive = DateTimeOffset.UtcNow }, ReleaseStatus.Switched);
        if (SwitchCurrent(clock, id, previous) is { } notSwitched)
        {
            if (_activation.MovesTrafficItself) return await TakeBackAsync(prepared, notSwitched, cancelled: false);
            prepared.Record = _store.SetStatus(prepared.Record, ReleaseStatus.Failed, notSwitched);
            return _bookkeeping.Finish(prepared.Started, id, prepared.Revision, previous, DeployOutcome.Failed, notSwitched, [], clock, prepared.Actor);
        }
        if (!_activation.MovesTrafficItself)
        {
            prepared.Record = prepared.Record with { WentLive = DateTimeOffset.UtcNow };
            _store.Save(prepared.Record);
        }

        // after_switch, health: the same for every strategy. Whatever stops them (a failed hook or check,
        // SIGINT/SIGTERM, an exception) takes the release back: an unverified release never stays live behind a
        // non-zero exit.
        var (problem, cancelled) = await _bookkeeping.CheckLiveAsync(_config, _http, clock, prepared.HookContext, prepared.Log, _activation.Step,
            UndoPlan(previous), cancellationToken);
        if (problem is not null) return await TakeBackAsync(prepared, problem, cancelled);

        // record-live, prune, history.
        prepared.Record = _store.SetStatus(prepared.Record, ReleaseStatus.Active);
        var pruned = clock.Run("prune", () => _bookkeeping.Prune(_config.KeepReleases), p => p.Count == 0 ? "nothing to remove" : $"removed {string.Join(", ", p)}");
        return _bookkeeping.Finish(prepared.Started, id, prepared.Revision, previous, DeployOutcome.Success, null, pruned, clock, prepared.Actor);
    }

    /// <summary>
    /// The `current` rename (symlink under a temp name, rename(2), fsync of the root). Null once `current` names the
    /// release, else why not.
    /// </summary>
    private string? SwitchCurrent(PhaseClock clock, ReleaseId id, ReleaseId? previous)
    {
        try
        {
            clock.Run("switch", () => _current.SwitchTo(id), previous is null ? $"current -> {id}" : $"current: {previous} -> {id}");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // rename(2) is atomic: either `current` moved (only the fsync after it failed) and the checks go on, or
            // the switch did not happen, and this release never served through `current`.
            if (_current.Read() == id) _progress.Warning($"switched to {id}, but {e.Message}");
        }
        return _current.Read() == id ? null : $"the switch to {id} failed: `current` could not be replaced in {_layout.Root}";
    }

    /// <summary>What the undo will do, for the warning when a signal or a failed check triggers it.</summary>
    private static string UndoPlan(ReleaseId? previous) => previous is null ? "taking the release back: there is no earlier one" : $"putting {previous} back";

    /// <summary>
    /// A release that did not go live: the strategy put back whatever moved (not live, rolled back, cancelled), or both
    /// releases serve (paused). The record says which, with the strategy's reason.
    /// </summary>
    private DeployResult NotLive(PreparedRelease prepared, ActivationResult moved)
    {
        var why = moved.Error ?? $"{_activation.Step} did not happen";
        var (status, outcome) = moved.Outcome switch
        {
            ActivationOutcome.Paused => (ReleaseStatus.Paused, DeployOutcome.Paused),
            ActivationOutcome.Cancelled => (ReleaseStatus.Cancelled, DeployOutcome.Cancelled),
            ActivationOutcome.RolledBack => (ReleaseStatus.Failed, DeployOutcome.RolledBack),
            _ => (ReleaseStatus.Failed, DeployOutcome.Failed),
        };
        prepared.Record = _store.SetStatus(prepared.Record, status, why);
        return _bookkeeping.Finish(prepared.Started, prepared.Id, prepared.Revision, prepared.Previous, outcome, why, [], prepared.Clock, prepared.Actor);
    }

    /// <summary>
    /// The undo of a release that went live (or began to): the strategy's undo, then `current` back and
    /// after_rollback, record failed or cancelled. Not cancellable: a second signal must not leave the unverified
    /// release live.
    /// </summary>
    private async Task<DeployResult> TakeBackAsync(PreparedRelease prepared, string problem, bool cancelled)
    {
        var (clock, id, previous) = (prepared.Clock, prepared.Id, prepared.Previous);
        var undo = await _activation.UndoAsync(prepared, CancellationToken.None);
        await SwitchBackAsync(clock, id, previous, prepared.Log, CancellationToken.None);
        prepared.Record = _store.SetStatus(prepared.Record, cancelled ? ReleaseStatus.Cancelled : ReleaseStatus.Failed, problem);
        var done = previous is null ? "there was no earlier release, so 'current' was removed" : $"switched back to {previous}";
        var error = undo.Note is null ? $"{problem}; {done}" : $"{problem}; {done}, {(undo.Back ? "and" : "but")} {undo.Note}";
        var outcome = cancelled ? DeployOutcome.Cancelled : undo.Back ? DeployOutcome.RolledBack : DeployOutcome.Failed;
        return _bookkeeping.Finish(prepared.Started, id, prepared.Revision, previous, outcome, error, [], clock, prepared.Actor);
    }

    /// <summary>
    /// Takes back a release that went live, because another host of its fleet failed to switch: the strategy's undo
    /// (instances back, or stopped for a first release), then the previous release (or no `current` at all) serves
    /// again and after_rollback runs.
    /// </summary>
    public async Task UndoAsync(PreparedRelease prepared, string reason, CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        var undo = await _activation.UndoAsync(prepared, cancellationToken);
        if (!undo.Back) throw new DeployException($"could not take {prepared.Id} back to {prepared.Previous?.Value ?? "no release"}: {undo.Note}");
        await SwitchBackAsync(prepared.Clock, prepared.Id, prepared.Previous, prepared.Log, cancellationToken);
        if (prepared.Previous is { } back && _store.Find(back) is { } record) _store.SetStatus(record, ReleaseStatus.Active);
        prepared.Record = _store.SetStatus(prepared.Record, ReleaseStatus.RolledBack, reason);
        _history.Append(new HistoryEntry
        {
            Action = "rollback",
            Release = prepared.Previous?.Value ?? "",
            From = prepared.Id.Value,
            Revision = prepared.Previous is { } previous ? _store.Find(previous)?.Revision : null,
            User = prepared.Actor.User,
            FleetDeploy = prepared.Actor.FleetDeploy,
            Started = started,
            Finished = DateTimeOffset.UtcNow,
            Outcome = "success",
            Error = reason,
            PhaseSeconds = prepared.Clock.Seconds,
        });
    }

    /// <summary>lock, recover, the target, the strategy's move to it, `current`, records, after_rollback, history.</summary>
    public async Task<RollbackResult> RollbackAsync(RollbackRequest request, CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        var actor = request.Actor ?? DeployActor.Local();
        if (!_store.Exists)
            throw new DeployException($"nothing has been deployed to {_layout.Root} yet");
        // Probes what a rollback writes (the root for `current`, the records) before anything moves.
        _store.EnsureLayout();
        using var held = await DeployLock.AcquireAsync(_layout, request.LockWait, request.CommandLine, cancellationToken);
        _bookkeeping.Recover();

        var from = _current.Read() ?? throw new DeployException($"{_layout.Current} does not point at a release; nothing to roll back from");
        var clock = new PhaseClock(_progress);
        // A paused deploy left instances of a newer release beside `current`'s: going back means all on `current`.
        if (request.Target is null && ReleasePlanner.PausedAfter(_store.List(), from) is { } paused && _store.Find(from) is { } live)
        {
            if (await _activation.RollBackAsync(paused.ReleaseId, live, clock, cancellationToken) is { } pausedFailure)
                throw new DeployException($"rollback of the paused release {paused.Id} to {live.Id} failed: {pausedFailure}");
            _store.SetStatus(paused, ReleaseStatus.RolledBack, "rolled back from its pause by " + actor.User);
            return await FinishRollbackAsync(started, clock, paused.ReleaseId, live, actor, cancellationToken);
        }

        var target = _bookkeeping.RollbackTarget(from, request.Target);
        var to = target.ReleaseId;
        if (await _activation.RollBackAsync(from, target, clock, cancellationToken) is { } failure)
        {
            _bookkeeping.RecordRollback(started, from, target, "failed", failure, clock, actor);
            throw new DeployException($"rollback to {to} failed: {failure}");
        }
        clock.Run("switch", () => _current.SwitchTo(to), $"current: {from} -> {to}");
        if (_store.Find(from) is { } left) _store.SetStatus(left, ReleaseStatus.RolledBack, "rolled back by " + actor.User);
        _store.SetStatus(target, ReleaseStatus.Active);
        return await FinishRollbackAsync(started, clock, from, target, actor, cancellationToken);
    }

    /// <summary>
    /// The end of every rollback once `to` serves: after_rollback in it (a failing hook is reported, the rollback
    /// stands), the history line, the result.
    /// </summary>
    private async Task<RollbackResult> FinishRollbackAsync(DateTimeOffset started, PhaseClock clock, ReleaseId from, ReleaseRecord target, DeployActor actor,
        CancellationToken cancellationToken)
    {
        var to = target.ReleaseId;
        string? error = null;
        using (var log = new ReleaseLog(_layout.LogFile(to), _progress, _redactor))
        {
            // A rollback's hooks get the target's own environment, as its instances do.
            var context = new HookContext(_config.App, _layout.Root, to.Value, _layout.ReleaseDir(to), _layout.ReleaseDir(from), _config.Hooks.Timeout)
                { AppVariables = ReleaseEnvironmentFile.Read(_layout, to)?.Variables ?? _config.Environment.Variables };
            try
            {
                await RunHooksAsync(clock, "after_rollback", _config.Hooks.AfterRollback, context, log, cancellationToken);
            }
            catch (HookFailedException e)
            {
                error = $"rolled back to {to}, but {e.Message}";
            }
        }
        _bookkeeping.RecordRollback(started, from, target, error is null ? "success" : "hook_failed", error, clock, actor);
        return new RollbackResult(from.Value, to.Value, target.Revision, error, clock.Seconds);
    }

    private Task<MigrationLintOutcome?> LintMigrationsAsync(PhaseClock clock) => _bookkeeping.LintMigrationsAsync(_migrations, clock);

    private Task<IReadOnlyList<string>> MigrateAsync(PhaseClock clock, ReleaseId id, CancellationToken cancellationToken) =>
        _bookkeeping.MigrateAsync(_migrations!, clock, id, cancellationToken);

    private Task SwitchBackAsync(PhaseClock clock, ReleaseId failed, ReleaseId? previous, ReleaseLog log, CancellationToken cancellationToken) =>
        _bookkeeping.SwitchBackAsync(_config, clock, failed, previous, log, cancellationToken);

    private Task RunHooksAsync(PhaseClock clock, string stage, IReadOnlyList<string> commands, HookContext context, ReleaseLog log, CancellationToken cancellationToken) =>
        _bookkeeping.RunHooksAsync(clock, stage, commands, context, log, cancellationToken);

    /// <summary>Identical content is looked up in the live release first, or the newest complete one.</summary>
    private ReleaseId? LinkBase(ReleaseId? previous)
    {
        if (previous is not null && Directory.Exists(_layout.ReleaseDir(previous))) return previous;
        return _store.List().Where(r => r.IsComplete).MaxBy(r => r.ReleaseId)?.ReleaseId;
    }

    internal static string Status(ReleaseStatus status) => status switch
    {
        ReleaseStatus.RolledBack => "rolled_back",
        _ => status.ToString().ToLowerInvariant(),
    };

    private static string Short(string revision) => revision.Length > 12 ? revision[..12] : revision;

    internal static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):0.0} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):0.0} MiB",
        >= 1L << 10 => $"{bytes / (double)(1L << 10):0.0} KiB",
        _ => $"{bytes} B",
    };
}
