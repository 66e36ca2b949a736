namespace Cutover.Agent;

/// <summary>
/// What `GET /v1/apps` says about one app: written by the agent and read by the CLI (`status`, `status --json`)
/// with this one record, so the two sides cannot drift apart by a property name. Certificate: with proxy.tls.acme,
/// what is served and the renewal state (not after, renewal due, last error, next attempt). Deploying: the activation
/// running now (its release, phase and batch), null when none runs.
/// </summary>
public sealed record AppView(string App, string? Release, string Proxy, long ProxyErrors, WarmSetView? Previous, IReadOnlyList<InstanceView> Instances, ProxyCountersView? ProxyCounters = null,
    Acme.CertificateStatus? Certificate = null, TrafficView? Traffic = null, IReadOnlyList<ProcessCountView>? Counts = null, DeployingView? Deploying = null);

/// <summary>How many instances a process type runs, what the config asks for, and whether `cutover scale` set the difference.</summary>
public sealed record ProcessCountView(string Process, int Instances, int? Configured, bool Scaled);

/// <summary>What the proxy answered for the app since the agent started: forwarded, its own errors (502/503/504), and each limit's refusals.</summary>
public sealed record ProxyCountersView(long Served, long Failed, long BodyTooLarge, long HeadersTooLarge, long TimedOut);

/// <summary>The blue-green set that served before the last switch, warm out of rotation until <see cref="Until"/>.</summary>
public sealed record WarmSetView(string Release, DateTimeOffset Until, int Instances);

/// <summary>One slot of an app, of its process type (web, or a name under `processes:`, which has no port): a stopped slot has no release, pid, port or address.</summary>
public sealed record InstanceView(
    string Id,
    string? Release,
    int? Pid,
    int? Port,
    string? Address,
    string? RunsAs,
    string State,
    double? UptimeSeconds,
    long MemoryBytes,
    int Restarts,
    string? Problem,
    string Process = Config.ProcessConfigReader.Web);

/// <summary>Maintenance and pause as the proxy applies them: requests held right now, and when the pause ends by itself.</summary>
public sealed record TrafficView(bool Maintenance, DateTimeOffset? PausedUntil, int Held);
