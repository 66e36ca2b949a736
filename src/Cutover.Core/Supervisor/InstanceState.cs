namespace Cutover.Supervisor;

public enum InstanceState
{
    /// <summary>Started, not yet ready: never routed to.</summary>
    Starting,
    /// <summary>Ready and in the proxy.</summary>
    Ready,
    /// <summary>Out of the proxy, finishing in-flight requests.</summary>
    Draining,
    /// <summary>Died or failed its health check; waiting to be restarted.</summary>
    Restarting,
    /// <summary>Exited too often too soon (max_restarts within min_uptime); left stopped.</summary>
    Errored,
    Stopped,
}
