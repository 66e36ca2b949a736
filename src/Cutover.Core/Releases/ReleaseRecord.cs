using System.Text.Json.Serialization;

namespace Cutover.Releases;

public enum ReleaseStatus
{
    /// <summary>Being staged or built; a release left in this state by a crash is treated as failed.</summary>
    Staging,
    /// <summary>Built and switched to, not yet verified (a deploy was interrupted after the switch).</summary>
    Switched,
    /// <summary>Deployed and verified; a rollback target.</summary>
    Active,
    /// <summary>Never went live or failed its check; never counts toward keep_releases.</summary>
    Failed,
    /// <summary>Was live and was rolled back from; skipped by the next rollback.</summary>
    RolledBack,
    /// <summary>Its deploy was stopped by SIGINT/SIGTERM; if it had gone live, the previous release was put back.</summary>
    Cancelled,
    /// <summary>Its rolling deploy paused (failure_action pause): some instances run it, the others `current`.</summary>
    Paused,
    /// <summary>
    /// Never written: the release's record exists but cannot be read (damaged by hand or by the disk; records are
    /// renamed into place, so a crash cannot cut one short). Listed with the reason; never pruned, never a rollback
    /// target, never overwritten, because what it said is unknown.
    /// </summary>
    Unreadable,
}

/// <summary>What Cutover knows about one release, kept in <c>.cutover/releases/&lt;id&gt;.json</c>.</summary>
public sealed record ReleaseRecord
{
    public required string Id { get; init; }
    public string? Revision { get; init; }
    public required DateTimeOffset Created { get; init; }
    public required ReleaseStatus Status { get; init; }
    public string? User { get; init; }
    public string? Source { get; init; }
    public string? Failure { get; init; }
    public DateTimeOffset? Updated { get; init; }
    /// <summary>When `current` was seen pointing at it: a release without it never served and is never a rollback target.</summary>
    public DateTimeOffset? WentLive { get; init; }
    /// <summary>Migrations this deploy applied, in order.</summary>
    public IReadOnlyList<string>? Migrations { get; init; }
    /// <summary>Statements the linter would have stopped, let through by a `-- cutover:safety-assured` comment, with its reason.</summary>
    public IReadOnlyList<SafetyAssuredNote>? SafetyAssured { get; init; }

    /// <summary>strategy: swarm: the image this release runs (a swarm release's whole artifact) and a summary of its service spec.</summary>
    public string? Image { get; init; }
    public string? Spec { get; init; }

    [JsonIgnore] public ReleaseId ReleaseId => ReleaseId.Parse(Id);

    /// <summary>Complete releases can be switched to; staging and failed ones cannot.</summary>
    [JsonIgnore] public bool IsComplete => Status is ReleaseStatus.Active or ReleaseStatus.RolledBack or ReleaseStatus.Switched;
}

/// <summary>A statement a team marked as checked (`-- cutover:safety-assured &lt;reason&gt;`), kept with the release that ran it.</summary>
public sealed record SafetyAssuredNote(string File, int Line, string Reason, string Statement);
