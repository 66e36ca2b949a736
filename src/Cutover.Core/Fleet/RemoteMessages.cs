using System.Text.Json.Serialization;
using Cutover.Progress;

namespace Cutover.Fleet;

/// <summary>
/// One request line the deployer sends a host's `cutover remote session` (<see cref="RemoteSessionClient"/> writes it,
/// <see cref="RemoteSession"/> reads it), named by "op". Each request says which answer its result carries, so the
/// two sides agree on it at compile time.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "op")]
[JsonDerivedType(typeof(Hashes), "hashes")]
[JsonDerivedType(typeof(Prepare), "prepare")]
[JsonDerivedType(typeof(PrepareFromLive), "prepare_from_live")]
[JsonDerivedType(typeof(Migrate), "migrate")]
[JsonDerivedType(typeof(BeforeSwitch), "before_switch")]
[JsonDerivedType(typeof(Switch), "switch")]
[JsonDerivedType(typeof(Undo), "undo")]
[JsonDerivedType(typeof(Abort), "abort")]
[JsonDerivedType(typeof(Close), "close")]
public abstract record SessionRequest
{
    /// <summary>The sha256 of every file of the live release, so the deployer sends only the rest. Needs no lock.</summary>
    public sealed record Hashes : SessionRequest<SessionAnswer.LiveHashes>;

    /// <summary>
    /// Lock, record and stage the release from the upload directory (which the session then deletes, whatever
    /// happens). <paramref name="Started"/> is the deployer's start, so every host names the release alike;
    /// <paramref name="User"/> (who deploys) and <paramref name="FleetDeploy"/> (the deploy's id on every host) go into history.
    /// </summary>
    public sealed record Prepare(string UploadDir, string? Revision, string Command, DateTimeOffset Started, double LockWaitSeconds, string? User = null, string? FleetDeploy = null)
        : SessionRequest<SessionAnswer.Prepared>;

    /// <summary>
    /// `deploy --env-only` with hosts: lock, record and stage a new release from this host's live release (hard links, as
    /// the local --env-only does) with the environment the session's config resolves; nothing is uploaded. Refused
    /// when the live release is no longer <paramref name="Live"/>, the one the deployer saw and checked across hosts.
    /// </summary>
    public sealed record PrepareFromLive(string Live, string? Revision, string Command, DateTimeOffset Started, double LockWaitSeconds, string? User = null,
        string? FleetDeploy = null)
        : SessionRequest<SessionAnswer.Prepared>;

    /// <summary>
    /// The fleet's migrations, run on this host once for all. The host's own <paramref name="DatabaseUrlEnv"/> wins
    /// over <paramref name="DatabaseUrl"/>, the deployer's (a CI that holds the URL).
    /// </summary>
    public sealed record Migrate(IReadOnlyList<MigrationPayload> Migrations, double LockTimeoutMs, double StatementTimeoutMs, int LockRetries,
        string DatabaseUrlEnv, string? DatabaseUrl, string AppliedBy) : SessionRequest<SessionAnswer.Migrated>;

    public sealed record BeforeSwitch : SessionRequest<SessionAnswer.Done>;

    /// <summary>Go live on this host: the `current` switch or the agent, then the checks (failing means switched back).</summary>
    public sealed record Switch : SessionRequest<SessionAnswer.Done>;

    /// <summary>Take the switched release back, because another host of the fleet failed.</summary>
    public sealed record Undo(string Reason) : SessionRequest<SessionAnswer.Done>;

    /// <summary>Before any switch: record failed, staged release removed, lock released; the session ends.</summary>
    public sealed record Abort(string Reason) : SessionRequest<SessionAnswer.Done>;

    /// <summary>The deploy is over on this host; the session ends and releases the lock.</summary>
    public sealed record Close : SessionRequest<SessionAnswer.Done>;
}

/// <summary>A request whose result carries a <typeparamref name="TAnswer"/>.</summary>
public abstract record SessionRequest<TAnswer> : SessionRequest where TAnswer : class;

/// <summary>One migration file as the deployer sends it to the fleet's first host: its name and its bytes (base64).</summary>
public sealed record MigrationPayload(string Name, string Content);

/// <summary>What a request's result carries when the host did it.</summary>
public static class SessionAnswer
{
    public sealed record LiveHashes(IReadOnlyList<string> Sha256s);

    /// <summary>The release staged (and locked) on the host, and the one live there until the switch.</summary>
    public sealed record Prepared(string Release, string? Previous);

    /// <summary>The files applied, in order (empty: nothing was pending).</summary>
    public sealed record Migrated(IReadOnlyList<string> Applied);

    public sealed record Done;
}

/// <summary>
/// The "result" line that ends the progress a host streams for one request: the answer when it did it, else the
/// error (<see cref="Locked"/> when another deploy or rollback holds the host's root).
/// </summary>
public sealed record SessionResult<TAnswer>(TAnswer? Answer, string? Error = null, bool Locked = false) : ResultEvent where TAnswer : class
{
    public static SessionResult<TAnswer> Failed(string error, bool locked = false) => new(null, error, locked);
}
