using System.Text.Json;
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
/// </summary>
public sealed class RemoteSession(DeployPipeline deployer, RootLayout layout, TextReader input, JsonProgress output)
{
    private PreparedRelease? _prepared;
    private bool _switched;

    public sealed record Request(string Op, string? UploadDir = null, string? Revision = null, string? Command = null, string? Reason = null, DateTimeOffset? Started = null,
        double? LockWaitSeconds = null, IReadOnlyList<MigrationPayload>? Migrations = null, double? LockTimeoutMs = null, double? StatementTimeoutMs = null,
        int? LockRetries = null, string? DatabaseUrlEnv = null, string? DatabaseUrl = null, string? AppliedBy = null);

    /// <summary>One migration file as the deployer sends it to the fleet's first host: its name and its bytes (base64).</summary>
    public sealed record MigrationPayload(string Name, string Content);

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
                var request = JsonSerializer.Deserialize<Request>(line, Json.Options) ?? throw new DeployException("empty request");
                if (!await HandleAsync(request, lost.Token)) return;
            }
        }
        finally
        {
            if (_prepared is not null && !_switched)
            {
                // The deployer is gone before the switch: nothing of this deploy may stay.
                deployer.Abort(_prepared, "the fleet deployer went away before the switch", removeRelease: true);
                TryReply(new { @event = "result", ok = false, error = "aborted: the connection closed before the switch" });
            }
            _prepared?.Dispose();
            // The stdin reader is left behind on purpose: the process exits next, and waiting for an EOF that a
            // live deployer has not sent yet would only delay the reply it is waiting for.
            await lost.CancelAsync();
        }
    }

    /// <summary>False when the session is over.</summary>
    private async Task<bool> HandleAsync(Request request, CancellationToken cancellationToken)
    {
        try
        {
            switch (request.Op)
            {
                case "hashes":
                    // What the live release holds, so the deployer sends only the rest; no lock needed to read it.
                    var live = new CurrentLink(layout).Read();
                    Reply(new { @event = "result", ok = true, hashes = live is null ? [] : ReleaseHashes.Of(layout, live).Values.Distinct().ToArray() });
                    return true;
                case "prepare":
                    await PrepareAsync(request, cancellationToken);
                    Reply(new { @event = "result", ok = true, release = _prepared!.Id.Value, previous = _prepared.Previous?.Value });
                    return true;
                case "migrate":
                    var migrated = await MigrateAsync(request, cancellationToken);
                    Reply(new { @event = "result", ok = migrated.Error is null, error = migrated.Error, applied = migrated.Applied });
                    return true;
                case "before_switch":
                    await deployer.BeforeSwitchAsync(Prepared, cancellationToken);
                    Reply(new { @event = "result", ok = true });
                    return true;
                case "switch":
                    _switched = true;
                    var result = await deployer.ActivateAsync(Prepared, cancellationToken);
                    Reply(new { @event = "result", ok = result.Succeeded, release = result.Release, error = result.Error });
                    return true;
                case "undo":
                    await deployer.UndoAsync(Prepared, request.Reason ?? "another host of the fleet failed to switch", cancellationToken);
                    Reply(new { @event = "result", ok = true });
                    return true;
                case "abort":
                    if (_prepared is not null && !_switched) deployer.Abort(_prepared, request.Reason ?? "aborted by the fleet deployer", removeRelease: true);
                    _switched = true; // nothing left to clean up on the way out
                    Reply(new { @event = "result", ok = true });
                    return false;
                case "close":
                    _switched = true;
                    Reply(new { @event = "result", ok = true });
                    return false;
                default:
                    throw new DeployException($"unknown request '{request.Op}'");
            }
        }
        catch (Locking.LockHeldException e)
        {
            Reply(new { @event = "result", ok = false, error = e.Message, locked = true });
            return true;
        }
        catch (Exception e) when (e is DeployException or OperationCanceledException or IOException or UnauthorizedAccessException)
        {
            Reply(new { @event = "result", ok = false, error = e is OperationCanceledException ? "cancelled" : e.Message });
            return !cancellationToken.IsCancellationRequested;
        }
    }

    private PreparedRelease Prepared => _prepared ?? throw new DeployException("nothing is prepared in this session");

    /// <summary>
    /// The fleet's migrations, run here on the first host (where the database is reachable, as Capistrano's
    /// primary db server). The database URL comes from this host's environment, or else from the deployer's.
    /// </summary>
    private async Task<Migrations.MigrationRunResult> MigrateAsync(Request request, CancellationToken cancellationToken)
    {
        var envName = request.DatabaseUrlEnv ?? "DATABASE_URL";
        var url = Environment.GetEnvironmentVariable(envName) is { Length: > 0 } own ? own : request.DatabaseUrl;
        if (string.IsNullOrWhiteSpace(url))
            throw new DeployException($"{envName} is set neither on this host nor where `cutover deploy` runs; migrations.database_url_env names the variable");
        var files = (request.Migrations ?? []).Select(m => Migrations.MigrationFile.FromBytes(m.Name, m.Name, Convert.FromBase64String(m.Content))).ToList();
        var options = new Migrations.MigrationRunOptions
        {
            LockTimeout = TimeSpan.FromMilliseconds(request.LockTimeoutMs ?? 5000),
            StatementTimeout = TimeSpan.FromMilliseconds(request.StatementTimeoutMs ?? 0),
            LockRetries = request.LockRetries ?? 5,
            AppliedBy = request.AppliedBy ?? $"{Environment.UserName}@{Environment.MachineName}",
        };
        return await new Migrations.MigrationRunner(Migrations.DatabaseUrl.ToConnectionString(url), options, line => output.Output("migrate", line))
            .RunAsync(files, cancellationToken);
    }

    private async Task PrepareAsync(Request request, CancellationToken cancellationToken)
    {
        if (_prepared is not null) throw new DeployException("this session already prepared a release");
        var uploadDir = request.UploadDir ?? throw new DeployException("prepare needs upload_dir");
        try
        {
            var manifest = ReleaseManifest.Read(Path.Combine(uploadDir, ReleaseManifest.FileName));
            var previous = new CurrentLink(layout).Read();
            var previousDir = previous is null ? null : layout.ReleaseDir(previous);
            var hashes = previous is null ? new Dictionary<string, string>() : ReleaseHashes.Of(layout, previous);
            var source = new ManifestArtifact(manifest, uploadDir, previousDir, hashes);
            _prepared = await deployer.BeginAsync(source, request.Revision, TimeSpan.FromSeconds(request.LockWaitSeconds ?? 0),
                request.Command ?? "cutover deploy (fleet)", cancellationToken, request.Started);
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

    private void Reply(object value) => output.Emit(value);

    private void TryReply(object value)
    {
        try
        {
            output.Emit(value);
        }
        catch (IOException)
        {
            // Nobody is listening any more; the cleanup above is what matters.
        }
    }
}
