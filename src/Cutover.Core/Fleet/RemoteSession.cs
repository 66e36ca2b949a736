using System.Threading.Channels;
using Cutover.Deploy;
using Cutover.Progress;
using Cutover.Releases;

namespace Cutover.Fleet;

/// <summary>
/// The host side of a fleet deploy (`cutover remote session`): JSON lines in on stdin, progress events and one
/// result per request out on stdout, for the whole deploy. It takes the root's deploy lock on `prepare` and holds
/// it until the deployer closes the session, so the release stays staged and unswitched between requests while
/// the other hosts catch up. If the channel goes away before `switch` (EOF: the connection dropped, the deployer
/// died), the session aborts by itself: staged release removed, lock released, the live release untouched.
/// <paramref name="beforePrepare"/> runs first on `prepare` and `prepare_from_live` (the host's agent upgraded to this build, issue 12): its
/// failure fails the prepare, so nothing is staged and the deployer stops before any host switches.
/// </summary>
/// <param name="openLive">The live release as an artifact (`EnvOnlyRelease.Open` over the session's config), for `prepare_from_live`.</param>
/// <param name="beforePrepare">Runs before a prepare of either kind (the host's agent upgrade to the installed build).</param>
public sealed class RemoteSession(DeployPipeline deployer, RootLayout layout, TextReader input, JsonProgress output, Func<EnvOnlyRelease.Source>? openLive = null,
    Func<CancellationToken, Task>? beforePrepare = null)
{
    private PreparedRelease? _prepared;
    private bool _switched;

    /// <summary>Serves requests until close, abort or EOF. <paramref name="hangup"/> is SIGHUP/SIGTERM.</summary>
    public async Task RunAsync(CancellationToken hangup)
    {
        using var lost = CancellationTokenSource.CreateLinkedTokenSource(hangup);
        var requests = Channel.CreateUnbounded<string>();
        // Read ahead on its own, so an EOF in the middle of a long build hook cancels that hook at once.
        _ = Task.Run(async () =>
        {
            try
            {
                while (await input.ReadLineAsync(lost.Token) is { } line) await requests.Writer.WriteAsync(line, lost.Token);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException)
            {
            }
            requests.Writer.TryComplete();
            await lost.CancelAsync();
        }, CancellationToken.None);

        try
        {
            while (true)
            {
                string line;
                try
                {
                    line = await requests.Reader.ReadAsync(CancellationToken.None);
                }
                catch (ChannelClosedException)
                {
                    break;
                }
                if (Json.TryRead<SessionRequest>(line, out var problem) is not { } request)
                {
                    // The deployer and this host no longer agree on the protocol: nothing after it could be trusted.
                    if (_prepared is not null && !_switched) deployer.Abort(_prepared, "the fleet deployer sent a request this host cannot read", removeRelease: true);
                    _switched = true; // cleaned up already
                    TryReply(SessionResult<SessionAnswer.Done>.Failed($"cannot read the request ({problem}): {Json.Quote(line)}; the session ends" +
                                                                       (_prepared is null ? "" : ", the staged release was removed")));
                    return;
                }
                if (!await HandleAsync(request, lost.Token)) return;
            }
        }
        finally
        {
            if (_prepared is not null && !_switched)
            {
                // The deployer is gone before the switch: nothing of this deploy may stay.
                deployer.Abort(_prepared, "the fleet deployer went away before the switch", removeRelease: true);
                TryReply(SessionResult<SessionAnswer.Done>.Failed("aborted: the connection closed before the switch"));
            }
            _prepared?.Dispose();
            // The stdin reader is left behind on purpose: the process exits next, and waiting for an EOF that a
            // live deployer has not sent yet would only delay the reply it is waiting for.
            await lost.CancelAsync();
        }
    }

    /// <summary>False when the session is over.</summary>
    private async Task<bool> HandleAsync(SessionRequest request, CancellationToken cancellationToken)
    {
        try
        {
            switch (request)
            {
                case SessionRequest.Hashes:
                    // What the live release holds, so the deployer sends only the rest; no lock needed to read it.
                    var live = new CurrentLink(layout).Read();
                    Reply(new SessionAnswer.LiveHashes(live is null ? [] : ReleaseHashes.Of(layout, live).Values.Distinct().ToArray()));
                    return true;
                case SessionRequest.Prepare prepare:
                    if (beforePrepare is not null) await beforePrepare(cancellationToken);
                    await PrepareAsync(prepare, cancellationToken);
                    Reply(new SessionAnswer.Prepared(_prepared!.Id.Value, _prepared.Previous?.Value));
                    return true;
                case SessionRequest.PrepareFromLive fromLive:
                    if (beforePrepare is not null) await beforePrepare(cancellationToken);
                    await PrepareFromLiveAsync(fromLive, cancellationToken);
                    Reply(new SessionAnswer.Prepared(_prepared!.Id.Value, _prepared.Previous?.Value));
                    return true;
                case SessionRequest.Migrate migrate:
                    var migrated = await MigrateAsync(migrate, cancellationToken);
                    output.Result(migrated.Error is null
                        ? new SessionResult<SessionAnswer.Migrated>(new SessionAnswer.Migrated(migrated.Applied))
                        : SessionResult<SessionAnswer.Migrated>.Failed(migrated.Error));
                    return true;
                case SessionRequest.BeforeSwitch:
                    await deployer.BeforeSwitchAsync(Prepared, cancellationToken);
                    Reply(new SessionAnswer.Done());
                    return true;
                case SessionRequest.Switch:
                    _switched = true;
                    var result = await deployer.ActivateAsync(Prepared, cancellationToken);
                    output.Result(result.Succeeded ? new SessionResult<SessionAnswer.Done>(new SessionAnswer.Done()) : SessionResult<SessionAnswer.Done>.Failed(result.Error ?? "failed"));
                    return true;
                case SessionRequest.Undo undo:
                    await deployer.UndoAsync(Prepared, undo.Reason, cancellationToken);
                    Reply(new SessionAnswer.Done());
                    return true;
                case SessionRequest.Abort abort:
                    if (_prepared is not null && !_switched) deployer.Abort(_prepared, abort.Reason, removeRelease: true);
                    _switched = true; // nothing left to clean up on the way out
                    Reply(new SessionAnswer.Done());
                    return false;
                case SessionRequest.Close:
                    _switched = true;
                    Reply(new SessionAnswer.Done());
                    return false;
                default:
                    throw new DeployException($"no handler for the request {request.GetType().Name}");
            }
        }
        catch (Locking.LockHeldException e)
        {
            output.Result(SessionResult<SessionAnswer.Done>.Failed(e.Message, locked: true));
            return true;
        }
        catch (Exception e) when (e is DeployException or OperationCanceledException or IOException or UnauthorizedAccessException)
        {
            // Any request's result reads a failure alike: the answer is absent.
            output.Result(SessionResult<SessionAnswer.Done>.Failed(e is OperationCanceledException ? "cancelled" : e.Message));
            return !cancellationToken.IsCancellationRequested;
        }
    }

    /// <summary>Who deploys, as the deployer said; this host's user when it did not.</summary>
    private static DeployActor ActorOf(string? user, string? fleetDeploy) => new(user ?? Environment.UserName, fleetDeploy);

    private PreparedRelease Prepared => _prepared ?? throw new DeployException("nothing is prepared in this session");

    /// <summary>
    /// The fleet's migrations, run here on the first host (where the database is reachable, as Capistrano's
    /// primary db server). The database URL comes from this host's environment, or else from the deployer's.
    /// </summary>
    private async Task<Migrations.MigrationRunResult> MigrateAsync(SessionRequest.Migrate request, CancellationToken cancellationToken)
    {
        var envName = request.DatabaseUrlEnv;
        var url = Environment.GetEnvironmentVariable(envName) is { Length: > 0 } own ? own : request.DatabaseUrl;
        if (string.IsNullOrWhiteSpace(url))
            throw new DeployException($"{envName} is set neither on this host nor where `cutover deploy` runs; migrations.database_url_env names the variable");
        var files = request.Migrations.Select(m => Migrations.MigrationFile.FromBytes(m.Name, m.Name, Convert.FromBase64String(m.Content))).ToList();
        var options = new Migrations.MigrationRunOptions
        {
            LockTimeout = TimeSpan.FromMilliseconds(request.LockTimeoutMs),
            StatementTimeout = TimeSpan.FromMilliseconds(request.StatementTimeoutMs),
            LockRetries = request.LockRetries,
            AppliedBy = request.AppliedBy,
        };
        return await new Migrations.MigrationRunner(Migrations.DatabaseUrl.ToConnectionString(url), options, line => output.Output("migrate", line))
            .RunAsync(files, cancellationToken);
    }

    private async Task PrepareAsync(SessionRequest.Prepare request, CancellationToken cancellationToken)
    {
        if (_prepared is not null) throw new DeployException("this session already prepared a release");
        var uploadDir = request.UploadDir;
        try
        {
            var manifest = ReleaseManifest.Read(Path.Combine(uploadDir, ReleaseManifest.FileName));
            var previous = new CurrentLink(layout).Read();
            var previousDir = previous is null ? null : layout.ReleaseDir(previous);
            var hashes = previous is null ? new Dictionary<string, string>() : ReleaseHashes.Of(layout, previous);
            var source = new ManifestArtifact(manifest, uploadDir, previousDir, hashes);
            _prepared = await deployer.BeginAsync(source, request.Revision, TimeSpan.FromSeconds(request.LockWaitSeconds),
                request.Command, cancellationToken, request.Started, actor: ActorOf(request.User, request.FleetDeploy));
            RemoveStaleUploads(uploadDir);
            try
            {
                await deployer.StageAsync(_prepared, cancellationToken);
            }
            catch (Exception e) when (e is DeployException or OperationCanceledException)
            {
                // A failed stage here is still part of one fleet deploy: clean, so the host looks untouched.
                if (e is not Staging.ArtifactException) deployer.Abort(_prepared, e.Message, removeRelease: true);
                _prepared.Dispose();
                _prepared = null;
                throw;
            }
        }
        finally
        {
            ReleaseStore.DeleteTree(uploadDir);
        }
    }

    private async Task PrepareFromLiveAsync(SessionRequest.PrepareFromLive request, CancellationToken cancellationToken)
    {
        if (_prepared is not null) throw new DeployException("this session already prepared a release");
        if (openLive is null) throw new DeployException("this session cannot stage from the live release");
        var live = openLive();
        _prepared = await deployer.BeginAsync(live.Release.Artifact, request.Revision ?? live.Revision, TimeSpan.FromSeconds(request.LockWaitSeconds),
            request.Command, cancellationToken, request.Started, actor: ActorOf(request.User, request.FleetDeploy));
        try
        {
            // Checked under the lock: a deploy or rollback between the deployer's look and now changed what is live.
            if (_prepared.Previous?.Value != request.Live)
                throw new DeployException($"the live release changed to {_prepared.Previous?.Value ?? "nothing"} since the deployer saw {request.Live}; run the deploy again");
            await deployer.StageAsync(_prepared, cancellationToken);
        }
        catch (Exception e) when (e is DeployException or OperationCanceledException)
        {
            if (e is not Staging.ArtifactException) deployer.Abort(_prepared, e.Message, removeRelease: true);
            _prepared.Dispose();
            _prepared = null;
            throw;
        }
    }

    /// <summary>
    /// Upload directories of deployers that died before their prepare (the only ones nobody cleans). An hour is far
    /// longer than any transfer that is still going on beside this deploy.
    /// </summary>
    private static void RemoveStaleUploads(string current)
    {
        var parent = Path.GetDirectoryName(current)!;
        foreach (var dir in Directory.GetDirectories(parent))
            if (dir != current && Directory.GetLastWriteTimeUtc(dir) < DateTime.UtcNow.AddHours(-1))
                ReleaseStore.DeleteTree(dir);
    }

    /// <summary>The request was done: its result carries the answer.</summary>
    private void Reply<TAnswer>(TAnswer answer) where TAnswer : class => output.Result(new SessionResult<TAnswer>(answer));

    private void TryReply<TAnswer>(SessionResult<TAnswer> result) where TAnswer : class
    {
        try
        {
            output.Result(result);
        }
        catch (IOException)
        {
            // Nobody is listening any more; the cleanup above is what matters.
        }
    }
}
