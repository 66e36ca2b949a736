namespace Cutover.Agent;

// The agent's answers on its control socket besides `/v1/apps` (AppView) and `activate` (a progress stream ending
// in ActivationResultEvent). Written by AgentServer and read by AgentClient with these records; the JSON shape is
// the one agents have always written, so a CLI can still talk to an agent started by an earlier build.

/// <summary>`GET /v1/agent`: who answers, and what went wrong at its start that people must see.</summary>
public sealed record AgentInfo(int Pid, IReadOnlyList<string> Warnings);

/// <summary>`POST /v1/apps/{app}/stop`: the app's instances are stopped (the proxy keeps answering 503).</summary>
public sealed record AppStopped(string Stopped);

/// <summary>`POST /v1/apps/{app}/start`: its instances run the release they last ran; <see cref="Already"/> when they did.</summary>
public sealed record AppStarted(string Started, bool Already = false);

/// <summary>`POST /v1/apps/{app}/cancel?release=`: the running activation of that release is being undone.</summary>
public sealed record ActivationCancelling(string Cancelling);

/// <summary>Any refusal (404, 500): what the agent could not do, as a sentence.</summary>
public sealed record AgentRefusal(string Error);
