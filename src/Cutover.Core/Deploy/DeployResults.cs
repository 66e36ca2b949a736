namespace Cutover.Deploy;

public enum DeployOutcome
{
    /// <summary>Switched, checked, live.</summary>
    Success,
    /// <summary>Stopped before the switch; the previous release kept serving throughout.</summary>
    Failed,
    /// <summary>Switched, then failed a hook or the health check, and switched back by itself.</summary>
    RolledBack,
    /// <summary>Stopped by SIGINT/SIGTERM; whatever had been switched was put back before the command exited.</summary>
    Cancelled,
    /// <summary>failure_action pause: instances of the new and the previous release both serve; exit 1.</summary>
    Paused,
}

public static class DeployOutcomeWords
{
    /// <summary>The word history.jsonl and --json use: success, failed, rolled_back, cancelled.</summary>
    public static string Word(this DeployOutcome outcome) => outcome switch
    {
        DeployOutcome.Success => "success",
        DeployOutcome.Failed => "failed",
        DeployOutcome.Cancelled => "cancelled",
        DeployOutcome.Paused => "paused",
        _ => "rolled_back",
    };
}

public sealed record DeployRequest(string Source, string? Revision, TimeSpan LockWait, string CommandLine)
{
    /// <summary>`--image`: the container image to deploy (runtime: docker, strategy: swarm) instead of the configured one.</summary>
    public string? Image { get; init; }

    /// <summary>`--allow-empty`: an artifact with no files (an empty directory, a 0-byte .tar.gz) may become the live release.</summary>
    public bool AllowEmpty { get; init; }

    /// <summary>`--adopt-root`: deploy into a non-empty root that Cutover did not create.</summary>
    public bool AdoptRoot { get; init; }

    /// <summary>Who deploys (history's user); the OS user when not given.</summary>
    public DeployActor? Actor { get; init; }

    /// <summary>What to stage when it is not <see cref="Source"/> opened by the strategy (`--env-only`: the live release's files or image).</summary>
    public Staging.ReleaseSource? Release { get; init; }
}

public sealed record DeployResult(
    DeployOutcome Outcome,
    string Release,
    string? Revision,
    string? Previous,
    string? Error,
    IReadOnlyList<string> Pruned,
    IReadOnlyDictionary<string, double> PhaseSeconds)
{
    public bool Succeeded => Outcome == DeployOutcome.Success;
}

public sealed record RollbackRequest(string? Target, TimeSpan LockWait, string CommandLine)
{
    /// <summary>Who rolls back (history's user; on a fleet host the deploying user and the fleet's id); the OS user when not given.</summary>
    public DeployActor? Actor { get; init; }
}

public sealed record RollbackResult(
    string From,
    string To,
    string? Revision,
    string? Error,
    IReadOnlyDictionary<string, double> PhaseSeconds)
{
    public bool Succeeded => Error is null;
}
