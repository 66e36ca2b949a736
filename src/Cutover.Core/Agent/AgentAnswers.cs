namespace Cutover.Agent;

// The agent's answers on its control socket besides `/v1/apps` (AppView) and `activate` (a progress stream ending
// in ActivationResultEvent). Written by AgentServer and read by AgentClient with these records; the JSON shape is
// the one agents have always written, so a CLI can still talk to an agent started by an earlier build.

/// <summary>
/// `GET /v1/agent`: who answers, and what went wrong at its start that people must see; its version and since when it
/// runs (null from an agent that predates them).
/// </summary>
public sealed record AgentInfo(int Pid, IReadOnlyList<string> Warnings, string? Version = null, DateTimeOffset? Since = null);

/// <summary>`POST /v1/agent/upgrade`: the command that runs the new agent's binary (its `agent --take-over` arguments are added).</summary>
public sealed record UpgradeRequest(IReadOnlyList<string> Command);

/// <summary>The answer to `upgrade`: the new agent serves; the old one (this answer's sender) leaves once it has drained.</summary>
public sealed record AgentUpgraded(string OldVersion, int OldPid, string NewVersion, int NewPid)
{
    /// <summary>
    /// Set when an app was paused: the old agent keeps the requests it holds until the resume (at the new agent, which
    /// passes it on) or this time at the latest (then 503), and leaves only after that.
    /// </summary>
    public DateTimeOffset? PausedUntil { get; init; }
}

/// <summary>`POST /v1/apps/{app}/stop`: the app's instances are stopped (the proxy keeps answering 503).</summary>
public sealed record AppStopped(string Stopped);

/// <summary>`POST /v1/apps/{app}/start`: its instances run the release they last ran; <see cref="Already"/> when they did.</summary>
public sealed record AppStarted(string Started, bool Already = false);

/// <summary>`POST /v1/apps/{app}/cancel?release=`: the running activation of that release is being undone.</summary>
public sealed record ActivationCancelling(string Cancelling);

/// <summary>Any refusal (404, 500): what the agent could not do, as a sentence.</summary>
public sealed record AgentRefusal(string Error);

/// <summary>`POST /v1/apps/{app}/maintenance`: what to answer every request with (null body: the default page); <see cref="On"/> false ends it.</summary>
public sealed record MaintenanceRequest(bool On, string? Body = null, string? ContentType = null);

/// <summary>The answer to `maintenance`: whether the app is now in maintenance.</summary>
public sealed record MaintenanceSet(string App, bool Maintenance);

/// <summary>`POST /v1/apps/{app}/pause?timeout_ms=`: new requests are held until resume or <see cref="Until"/>.</summary>
public sealed record PauseSet(string App, DateTimeOffset Until);

/// <summary>`POST /v1/apps/{app}/resume`: held requests released; <see cref="WasPaused"/> false when there was no pause.</summary>
public sealed record PauseResumed(string App, bool WasPaused, int Released);
