using Cutover.Config;

namespace Cutover.Supervisor;

/// <summary>Everything needed to start one instance of an app from one release.</summary>
public sealed record InstanceSpec
{
    public required string App { get; init; }
    public required int Index { get; init; }
    public required string ReleaseId { get; init; }
    public required string ReleaseDir { get; init; }
    /// <summary>The loopback port of a web instance; 0 for a process type, which has none.</summary>
    public required int Port { get; init; }
    /// <summary>The process type: "web" for `run:`, else a name under `processes:`.</summary>
    public string Process { get; init; } = Config.ProcessConfigReader.Web;
    /// <summary>A web instance: a port, readiness by its answers, a place in the proxy. A process type has none of these.</summary>
    public bool ServesHttp => Process == Config.ProcessConfigReader.Web;
    /// <summary>
    /// Names this process's runtime files (exit status, notify socket) apart from another process of the same slot that
    /// runs beside it during a start-first replacement: the port for web, a fresh token for a process type.
    /// </summary>
    public string FileTag { get; init; } = "";
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

    /// <summary>Web keeps today's "app-0"; a process type is "app-worker-0".</summary>
    public string Id => ServesHttp ? $"{App}-{Index}" : $"{App}-{Process}-{Index}";

    public string RuntimeFileStem => $"{Id}-{(FileTag.Length > 0 ? FileTag : Port.ToString(System.Globalization.CultureInfo.InvariantCulture))}";
}
