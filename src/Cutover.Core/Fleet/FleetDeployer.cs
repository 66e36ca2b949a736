using System.Diagnostics;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Migrations;
using Cutover.Progress;
using Cutover.Staging;

namespace Cutover.Fleet;

public sealed record FleetDeployRequest(string Source, string? Revision, string CommandLine, bool AcceptNewHostKeys, TimeSpan LockWait = default)
{
    /// <summary>`--allow-empty`: an artifact with no files may become every host's live release.</summary>
    public bool AllowEmpty { get; init; }
    /// <summary>
    /// `--env-only`: every host stages a new release from its live release's files with the environment resolved now;
    /// nothing is uploaded, and migrations are skipped (the files, migrations included, are the live release's).
    /// </summary>
    public bool EnvOnly { get; init; }
}

/// <summary>Where one host ended: switched, still on its old release, rolled back, or failed (and why).</summary>
public sealed record HostReport(string Host, string Outcome, string? Release, string? Previous, string? Error);

public sealed record FleetDeployResult(DeployOutcome Outcome, string? Release, string? Error, IReadOnlyList<HostReport> Hosts, double Seconds)
{
    /// <summary>It failed because a host's root was locked by another deploy or rollback.</summary>
    public bool Locked { get; init; }
    /// <summary>It failed because a host refused the deploy as asked (a root Cutover did not create): exit 2.</summary>
    public bool BadInput { get; init; }

    public bool Succeeded => Outcome == DeployOutcome.Success;
}

/// <summary>
/// Deploys one release to every host of a fleet, all or nothing. Connect to all (host keys checked) before
/// touching any; install cutover, send what each host lacks and prepare (lock, stage, shared, build) on all,
/// each host holding its lock in a remote session; only when every host has prepared do migrations run (once)
/// and before_switch hooks, and only then does switching start, in batches with a wait between. A failure
/// before the switch aborts every host (staged releases removed, nothing switched); a failure while switching
/// takes the hosts already switched back to their previous release.
/// </summary>
public sealed class FleetDeployer(CutoverConfig config, IDeployProgress progress, SelfContainedBuild build, Func<string, string?> environment, HostSelection? selection = null)
{
    private readonly FleetConfig _fleet = config.Fleet ?? throw new ArgumentException("the config has no hosts", nameof(config));
    private readonly HostSelection _selection = selection ?? HostSelection.All(config.Fleet);
    private readonly Lock _gate = new();

    private sealed class HostRun(FleetHost host, IDeployProgress progress)
    {
        public FleetHost Host => host;
        public IDeployProgress Progress => progress;
        public HostConnection? Connection { get; set; }
        public RemoteSessionClient? Session { get; set; }
        public string? Release { get; set; }
        public string? Previous { get; set; }
        public bool Prepared { get; set; }
        public bool Switched { get; set; }
        public string? Outcome { get; set; }
        public string? Error { get; set; }
        public bool Locked { get; set; }
        public bool BadInput { get; set; }
    }

    public async Task<FleetDeployResult> DeployAsync(FleetDeployRequest request, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var started = DateTimeOffset.UtcNow;
        // Every host's history line of this deploy carries it, so `cutover history` shows the fleet deploy as one.
        var actor = new DeployActor(Environment.UserName, DeployActor.NewFleetDeployId());
        // Migrations run once, on the primary only: a deploy that leaves it out would either skip them (a release
        // live against a schema it does not know) or change the database under a host it was told not to touch.
        if (config.Migrations is not null && !request.EnvOnly && !_selection.Hosts.Contains(_fleet.Primary))
            throw new InputException($"migrations run on the primary host {_fleet.Primary.Name}, which this deploy leaves out " +
                                     $"(it deploys to {string.Join(", ", _selection.Hosts.Select(h => h.Name))}); add {_fleet.Primary.Name} to --hosts, or deploy to every host");
        var source = request.EnvOnly ? null : ArtifactSource.Open(request.Source, "/");
        // As for a deploy on this machine, before any host is contacted.
        if (source is not null && !request.AllowEmpty) ArtifactSource.RefuseEmpty(source, "every host's live release", cancellationToken);
        var revision = request.Revision ?? (source is null ? null : await ArtifactSource.GitRevisionAsync(request.Source, cancellationToken));
        var phases = new PhaseClock(progress);
        var migrations = config.Migrations is { } m && !request.EnvOnly ? new MigrationPhase(m, environment) : null;
        if (migrations is not null && migrations.Config.Lint != MigrationLintLevel.Off)
        {
            var outcome = phases.Run("lint", migrations.Lint, o => $"{o.Results.Count} files: {o.Errors} errors, {o.Warnings} warnings");
            foreach (var f in outcome.Findings) progress.Warning($"{f.File}:{f.Line}:{f.Column}: [{f.Rule}] {f.Message}");
            if (migrations.Config.Lint == MigrationLintLevel.Error && outcome.Errors > 0)
                throw new DeployException($"{outcome.Errors} error-level findings in the migrations ({migrations.Config.Dir}); nothing was deployed to any host");
        }

        using var artifact = source is null ? null : phases.Run("read", () => LocalArtifact.Read(source, cancellationToken),
            a => $"{a.Manifest.Entries.Count} entries from {source.Description}");
        var knownHosts = new KnownHosts(_fleet.Ssh.KnownHosts);
        var runs = _selection.Hosts.Select(h => new HostRun(h, new HostProgress(h.Name, progress, _gate))).ToList();
        try
        {
            // 1. Every host answers, with the key we know, before any host is changed.
            await ForEachHostAsync(runs, cancellationToken, async (run, ct) =>
            {
                run.Connection = await new PhaseClock(run.Progress).RunAsync("connect",
                    () => HostConnection.ConnectAsync(run.Host, _fleet.Ssh, knownHosts, request.AcceptNewHostKeys, run.Progress.Info, ct),
                    c => $"{c.Host.User}@{c.Host.Address}:{c.Host.Port}");
            });
            if (Failures(runs) is { } unreachable)
            {
                foreach (var run in runs.Where(r => r.Error is null)) run.Outcome = "unchanged";
                return Result(runs, DeployOutcome.Failed, null, $"{unreachable}; nothing was changed on any host", clock);
            }
            if (request.EnvOnly && await DisagreeingLiveReleasesAsync(runs, cancellationToken) is { } disagreement)
            {
                foreach (var run in runs.Where(r => r.Error is null)) run.Outcome = "unchanged";
                return Result(runs, DeployOutcome.Failed, null, $"{disagreement}; nothing was changed on any host", clock) with { BadInput = true };
            }

            // 2. Install, send, prepare: everywhere, or nowhere.
            var installer = new RemoteInstaller(build);
            using (var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                await ForEachHostAsync(runs, stop.Token, (run, ct) => PrepareAsync(run, installer, artifact, revision, started, actor, request, ct),
                    onFailure: stop.Cancel);
            }
            if (Failures(runs) is { } notPrepared)
                return await AbortAllAsync(runs, $"{notPrepared}; no host was switched, every host is still on its previous release, and the staged releases were removed", clock);

            var release = runs[0].Release;
            if (runs.Any(r => r.Release != release))
                progress.Warning($"the hosts named the release differently ({string.Join(", ", runs.Select(r => $"{r.Host.Name}: {r.Release}"))}); their release histories differ");

            // 3. Once for the whole fleet, never per host: on the primary host (the first unless one says primary: true).
            if (migrations is not null)
            {
                var first = runs.First(r => r.Host == _fleet.Primary);
                string? failure = null;
                try
                {
                    await phases.RunAsync("migrate", async () =>
                    {
                        var migrated = await RequestAsync(first, new SessionRequest.Migrate(
                            migrations.Files().Select(f => new MigrationPayload(f.Name, Convert.ToBase64String(File.ReadAllBytes(f.Path)))).ToList(),
                            migrations.Config.LockTimeout.TotalMilliseconds,
                            migrations.Config.StatementTimeout.TotalMilliseconds,
                            migrations.Config.LockRetries,
                            migrations.Config.DatabaseUrlEnv,
                            // The host's own variable wins; this one serves a deployer that holds the URL (CI).
                            environment(migrations.Config.DatabaseUrlEnv),
                            $"{first.Host.Name} (fleet release {release}, deployed by {Environment.UserName}@{Environment.MachineName})"), cancellationToken);
                        return migrated.Applied is { Count: > 0 } applied ? $"on {first.Host.Name}: applied {string.Join(", ", applied)}" : $"on {first.Host.Name}: nothing pending";
                    }, d => d);
                }
                catch (DeployException e)
                {
                    failure = e is HostException h ? h.Reason : e.Message;
                }
                if (failure is not null)
                    return await AbortAllAsync(runs, $"migration failed on {first.Host.Name}: {failure}; no host was switched", clock);
            }
            if (config.Hooks.BeforeSwitch.Count > 0)
            {
                await ForEachHostAsync(runs, cancellationToken, (run, ct) => RequestAsync(run, new SessionRequest.BeforeSwitch(), ct));
                if (Failures(runs) is { } notReady)
                    return await AbortAllAsync(runs, $"{notReady}; no host was switched, every host is still on its previous release, and the staged releases were removed", clock);
            }

            // 4. Switch in batches.
            var size = _fleet.Options.Batch.For(runs.Count);
            // Stop-first across hosts: a host that loses a singleton (its new config leaves the type out) stops it
            // within its switch, so the hosts that run one switch in batches of their own after every other host.
            var batches = runs.Where(r => !RemoteConfig.RunsASingleton(config, r.Host)).Chunk(size)
                .Concat(runs.Where(r => RemoteConfig.RunsASingleton(config, r.Host)).Chunk(size)).ToList();
            for (var i = 0; i < batches.Count; i++)
            {
                if (i > 0 && _fleet.Options.Wait > TimeSpan.Zero)
                {
                    progress.Info($"waiting {Duration.Format(_fleet.Options.Wait)} before the next batch");
                    await Task.Delay(_fleet.Options.Wait, cancellationToken);
                }
                await ForEachHostAsync(batches[i], cancellationToken, async (run, ct) =>
                {
                    await RequestAsync(run, new SessionRequest.Switch(), ct);
                    run.Switched = true;
                    run.Outcome = $"switched to {run.Release}";
                });
                if (Failures(runs) is { } switchFailure)
                    return await UndoAsync(runs, switchFailure, clock);
            }

            await ForEachHostAsync(runs, cancellationToken, (run, ct) => RequestAsync(run, new SessionRequest.Close(), ct));
            return Result(runs, DeployOutcome.Success, release, null, clock);
        }
        finally
        {
            foreach (var run in runs)
            {
                if (run.Session is { } session) await session.DisposeAsync();
                run.Connection?.Dispose();
            }
        }
    }

    /// <summary>
    /// As on this machine: a non-empty root Cutover did not create (no .cutover/; shared/ alone is fine, seeded by
    /// hand before a first deploy) is refused before anything is written there, uploads included.
    /// </summary>
    private static async Task RefuseForeignRootAsync(HostConnection host, CancellationToken cancellationToken)
    {
        var root = HostConnection.Quote(host.Host.Root);
        var found = await host.RunAsync($"if [ -d {root} ] && [ ! -d {root}/.cutover ]; then ls -A {root} | grep -vx shared | head -n 3; fi", cancellationToken);
        var foreign = found.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (foreign.Length > 0)
            throw new HostException(host.Host, $"the root {host.Host.Root} is not empty and Cutover did not create it (it has no .cutover/, and holds {string.Join(", ", foreign)}); " +
                                               "deploy into a new or empty directory there") { BadInput = true };
    }

    /// <summary>
    /// `--env-only`: every host must run a release, the same one, or the new release would be a different build per host
    /// under one id. Null when they agree; else the sentence that names which host runs what.
    /// </summary>
    private async Task<string?> DisagreeingLiveReleasesAsync(List<HostRun> runs, CancellationToken cancellationToken)
    {
        await ForEachHostAsync(runs, cancellationToken, async (run, ct) =>
        {
            var link = await run.Connection!.RunAsync($"readlink {HostConnection.Quote(run.Host.Root + "/current")} || true", ct);
            var target = link.Stdout.Trim().TrimEnd('/');
            run.Previous = target.Length == 0 ? null : Path.GetFileName(target);
        });
        if (Failures(runs) is { } failed) return failed;
        if (runs.Where(r => r.Previous is null).Select(r => r.Host.Name).ToList() is { Count: > 0 } empty)
            return $"--env-only deploys each host's live release again, and nothing is live on {string.Join(", ", empty)}; deploy a build there first";
        var groups = runs.GroupBy(r => r.Previous!).ToList();
        if (groups.Count == 1) return null;
        return "--env-only needs every host on the same live release, and they differ (" +
               string.Join("; ", groups.Select(g => $"{g.Key} on {string.Join(", ", g.Select(r => r.Host.Name))}")) +
               "); deploy a build to every host, or narrow --hosts to hosts that run the same release";
    }

    private async Task PrepareAsync(HostRun run, RemoteInstaller installer, LocalArtifact? artifact, string? revision, DateTimeOffset started, DeployActor actor,
        FleetDeployRequest request, CancellationToken cancellationToken)
    {
        var host = run.Connection!;
        var clock = new PhaseClock(run.Progress);
        await RefuseForeignRootAsync(host, cancellationToken);
        var (bin, _) = await clock.RunAsync("install", () => installer.EnsureAsync(host, cancellationToken),
            r => r.Sent ? $"sent cutover {build.Version}" : $"cutover {build.Version} already installed");
        var remoteConfig = await RemoteConfig.WriteAsync(host, config, cancellationToken);
        await installer.LinkForAppAsync(host, config.App, cancellationToken);
        // The session starts before the transfer and answers `hashes` too: one cutover start-up per host, not two.
        // The host's roles go with the session, so its activation runs only what they name (no web role: no proxy).
        run.Session = host.StartSession($"exec {HostConnection.Quote(bin)} remote session -c {HostConnection.Quote(remoteConfig)} " +
                                        $"--host-roles {HostConnection.Quote(string.Join(',', run.Host.Roles))}", run.Progress);
        if (artifact is null)
        {
            // --env-only: the host stages from its own live release, checked again under its lock.
            await run.Session.SendAsync(new SessionRequest.PrepareFromLive(run.Previous!, revision, request.CommandLine, started, request.LockWait.TotalSeconds,
                actor.User, actor.FleetDeploy), cancellationToken);
            Prepared(run, Checked(run, await run.Session.ReplyAsync<SessionAnswer.Prepared>(cancellationToken)));
            return;
        }
        var hashes = (await RequestAsync(run, new SessionRequest.Hashes(), cancellationToken)).Sha256s.ToHashSet(StringComparer.Ordinal);
        var uploadDir = $"{run.Host.Root}/.cutover/uploads/{started:yyyyMMddHHmmss}-{Guid.NewGuid():N}";
        try
        {
            await clock.RunAsync("transfer", () => artifact.SendAsync(host, hashes, uploadDir, t => run.Progress.Info($"transfer: {t}"), cancellationToken),
                t => t.ToString());
            await run.Session.SendAsync(new SessionRequest.Prepare(uploadDir, revision, request.CommandLine, started, request.LockWait.TotalSeconds,
                actor.User, actor.FleetDeploy), cancellationToken);
        }
        catch (Exception e) when (e is OperationCanceledException or DeployException)
        {
            // Stopped before `prepare` reached the host (another host failed, mid-transfer or just after): the upload
            // directory goes too. Once `prepare` is sent, the host's session removes it itself, whatever happens.
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await host.RunAsync($"rm -rf {HostConnection.Quote(uploadDir)}", timeout.Token);
            }
            catch (Exception cleanup) when (cleanup is DeployException or OperationCanceledException)
            {
                run.Progress.Warning($"could not remove {uploadDir}: {cleanup.Message}");
            }
            throw;
        }
        Prepared(run, Checked(run, await run.Session.ReplyAsync<SessionAnswer.Prepared>(cancellationToken)));
    }

    private static void Prepared(HostRun run, SessionAnswer.Prepared prepared)
    {
        run.Release = prepared.Release;
        run.Previous = prepared.Previous;
        run.Prepared = true;
        run.Outcome = $"prepared {run.Release}";
    }

    private static async Task<TAnswer> RequestAsync<TAnswer>(HostRun run, SessionRequest<TAnswer> request, CancellationToken cancellationToken) where TAnswer : class =>
        Checked(run, await run.Session!.RequestAsync(request, cancellationToken));

    /// <summary>The answer, or the host's failure as a <see cref="HostException"/>.</summary>
    private static TAnswer Checked<TAnswer>(HostRun run, SessionResult<TAnswer> result) where TAnswer : class =>
        result.Answer ?? throw new HostException(run.Host, result.Error ?? "failed without saying why") { Locked = result.Locked };

    /// <summary>Runs <paramref name="work"/> on each host, fleet.parallel at a time; a host's failure is recorded on it, never thrown.</summary>
    private async Task ForEachHostAsync(IEnumerable<HostRun> runs, CancellationToken cancellationToken, Func<HostRun, CancellationToken, Task> work, Action? onFailure = null)
    {
        await Parallel.ForEachAsync(runs, new ParallelOptions { MaxDegreeOfParallelism = _fleet.Options.Parallel }, async (run, _) =>
        {
            if (run.Error is not null) return;
            try
            {
                cancellationToken.ThrowIfCancellationRequested();
                await work(run, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                run.Error = "stopped before it finished, because another host failed or the deploy was cancelled";
                run.Outcome = "stopped, not switched";
                onFailure?.Invoke();
            }
            catch (HostException e)
            {
                run.Error = e.Reason;
                run.Locked = e.Locked;
                run.BadInput = e.BadInput;
                run.Outcome = e.Locked ? "locked" : "failed";
                run.Progress.Warning(e.Reason);
                onFailure?.Invoke();
            }
            catch (DeployException e)
            {
                run.Error = e.Message;
                run.Outcome = "failed";
                run.Progress.Warning(e.Message);
                onFailure?.Invoke();
            }
        });
    }

    /// <summary>The hosts that failed for their own reasons (not those stopped because of them), as one sentence.</summary>
    private static string? Failures(IReadOnlyList<HostRun> runs)
    {
        var failed = runs.Where(r => r.Error is not null && r.Outcome != "stopped, not switched").ToList();
        if (failed.Count == 0 && runs.All(r => r.Error is null)) return null;
        if (failed.Count == 0) failed = runs.Where(r => r.Error is not null).ToList();
        return string.Join("; ", failed.Select(r => $"{r.Host.Name}: {r.Error}"));
    }

    /// <summary>Before any switch: every session aborts (staged release removed, lock released).</summary>
    private async Task<FleetDeployResult> AbortAllAsync(List<HostRun> runs, string message, Stopwatch clock)
    {
        await Parallel.ForEachAsync(runs, async (run, _) =>
        {
            if (run.Session is not { } session) return;
            try
            {
                if (!session.Ended && run.Prepared)
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
                    await session.RequestAsync(new SessionRequest.Abort(message), timeout.Token);
                }
            }
            catch (Exception e) when (e is DeployException or OperationCanceledException)
            {
                // A lost host aborts by itself when its channel closes (DisposeAsync below waits for that).
            }
            await session.DisposeAsync();
            run.Session = null;
            if (run.Error is null) run.Outcome = run.Previous is null ? "not switched (nothing was live)" : $"not switched, still on {run.Previous}";
        });
        return Result(runs, DeployOutcome.Failed, null, "deploy failed before the switch: " + message, clock);
    }

    /// <summary>During the switch: hosts already switched go back, the rest abort.</summary>
    private async Task<FleetDeployResult> UndoAsync(List<HostRun> runs, string failure, Stopwatch clock)
    {
        var reason = $"rolled back because the fleet deploy failed: {failure}";
        await Parallel.ForEachAsync(runs, async (run, _) =>
        {
            if (run.Session is not { } session || session.Ended) return;
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
                if (run.Switched)
                {
                    await RequestAsync(run, new SessionRequest.Undo(reason), timeout.Token);
                    await RequestAsync(run, new SessionRequest.Close(), timeout.Token);
                    run.Outcome = run.Previous is null ? "rolled back (current removed: nothing was live before)" : $"rolled back to {run.Previous}";
                }
                else if (run.Error is null)
                {
                    await RequestAsync(run, new SessionRequest.Abort(reason), timeout.Token);
                    run.Outcome = run.Previous is null ? "not switched (nothing was live)" : $"not switched, still on {run.Previous}";
                }
            }
            catch (Exception e) when (e is DeployException or OperationCanceledException)
            {
                run.Error = $"could not be rolled back: {e.Message}";
                run.Outcome = "failed";
            }
        });
        return Result(runs, DeployOutcome.RolledBack, null, $"deploy failed while switching: {failure}; the hosts already switched were rolled back", clock);
    }

    private static FleetDeployResult Result(List<HostRun> runs, DeployOutcome outcome, string? release, string? error, Stopwatch clock) =>
        new(outcome, release, error, runs.Select(r => new HostReport(r.Host.Name, r.Outcome ?? (r.Error is null ? "unchanged" : "failed"), r.Release, r.Previous, r.Error)).ToList(),
            clock.Elapsed.TotalSeconds) { Locked = runs.Any(r => r.Locked), BadInput = runs.Any(r => r.BadInput) };
}
