namespace Cutover.Deploy;

/// <summary>Where an activation (the agent moving an app's instances) ended.</summary>
public enum ActivationOutcome
{
    /// <summary>Every instance runs the release.</summary>
    Live,
    /// <summary>No instance was replaced; the previous release serves as before.</summary>
    NotLive,
    /// <summary>Some were replaced, then failure_action rollback put every instance back.</summary>
    RolledBack,
    /// <summary>failure_action pause (or continue past max_failure_ratio): instances of both releases serve.</summary>
    Paused,
    /// <summary>Stopped by SIGINT/SIGTERM; every replaced instance was put back first.</summary>
    Cancelled,
}

/// <summary>
/// The typed answer of an activation, written by the agent as the last NDJSON line of `activate` and read back by
/// the CLI with the same record. <see cref="Instances"/> counts the app's instances per release once it ended.
/// </summary>
public sealed record ActivationResult(ActivationOutcome Outcome, string? Error = null, IReadOnlyDictionary<string, int>? Instances = null)
{
    public static ActivationResult Live { get; } = new(ActivationOutcome.Live);

    public static ActivationResult NotLive(string error) => new(ActivationOutcome.NotLive, error);

    public bool Succeeded => Outcome == ActivationOutcome.Live;

    /// <summary>"2 on 20261130_010000, 2 on 20261129_230000": the mixed set a pause leaves.</summary>
    public string DescribeInstances() => Instances is null ? "" : string.Join(", ", Instances.OrderByDescending(p => p.Value).Select(p => $"{p.Value} on {p.Key}"));
}

/// <summary>The `result` line of the agent's activate stream (<see cref="Progress.ProgressStream{TResult}"/> writes and reads it).</summary>
public sealed record ActivationResultEvent(ActivationResult Result) : Progress.ResultEvent;
