using Cutover.Config;

namespace Cutover.Supervisor;

/// <summary>Everything needed to start one instance of an app from one release.</summary>
public sealed record InstanceSpec
{
    public required string App { get; init; }
    public required int Index { get; init; }
    public required string ReleaseId { get; init; }
    public required string ReleaseDir { get; init; }
    public required int Port { get; init; }
    public required RunConfig Run { get; init; }
    public required InstanceHealthConfig Health { get; init; }
    /// <summary>Where per-instance runtime files (the notify socket) go.</summary>
    public required string RuntimeDir { get; init; }

    /// <summary>runtime: docker — the image this release runs; null for processes.</summary>
    public string? Image { get; init; }

    /// <summary>
    /// The CUTOVER_HOME of the agent that starts it, set on the process as CUTOVER_AGENT_HOME: a restarted agent
    /// finds by it every process its predecessor left, even one started a moment before the state said so.
    /// </summary>
    public string? AgentHome { get; init; }

    public string Id => $"{App}-{Index}";
}
