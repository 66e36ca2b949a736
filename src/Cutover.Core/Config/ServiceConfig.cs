using System.Net;

namespace Cutover.Config;

/// <summary>How an instance is judged ready. None (process types only): alive for min_uptime.</summary>
public enum ReadinessKind { Http, Tcp, Notify, Message, None }

public enum RollingOrder { StartFirst, StopFirst }

public enum FailureAction { Rollback, Pause, Continue }

/// <summary>How each instance of a long-running app is started, judged ready, and stopped.</summary>
public sealed record RunConfig
{
    public required string Command { get; init; }
    public int Instances { get; init; } = 1;
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
    public string PortEnv { get; init; } = "PORT";
    public ReadinessKind Ready { get; init; } = ReadinessKind.Http;
    public TimeSpan ReadyTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>The signal number sent to stop an instance (SIGINT = 2 by default, as PM2).</summary>
    public int StopSignal { get; init; } = 2;
    public string StopSignalName { get; init; } = "SIGINT";
    public TimeSpan KillTimeout { get; init; } = TimeSpan.FromSeconds(5);
    public long? MaxMemory { get; init; }
    public TimeSpan MinUptime { get; init; } = TimeSpan.FromSeconds(1);
    public int MaxRestarts { get; init; } = 16;
}

/// <summary>
/// Cutover's own proxy in front of the instances. Apps of one agent may share a listen address (and tls.listen):
/// requests are routed by Host (exact, then *.wildcard, then an app without hosts) and then by the longest
/// segment-bounded path_prefix.
/// </summary>
public sealed record ProxyConfig
{
    public required IPEndPoint Listen { get; init; }
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Lower-case names, exact or "*.example.com" (one label); empty: every host no other app names.</summary>
    public IReadOnlyList<string> Hosts { get; init; } = [];
    /// <summary>"/" or "/api" (no trailing slash); the app receives the path unchanged.</summary>
    public string PathPrefix { get; init; } = "/";
    /// <summary>Peers whose X-Forwarded-For/-Proto/-Host are believed; nobody by default.</summary>
    public IReadOnlyList<IPNetwork> TrustedProxies { get; init; } = [];
    /// <summary>413 above it; null is no limit.</summary>
    public long? MaxRequestBody { get; init; }
    /// <summary>431 above it (the sum of the header lines).</summary>
    public long MaxRequestHeaders { get; init; } = 32 * 1024;
    /// <summary>504 when the app has not sent its response headers within it.</summary>
    public TimeSpan ResponseTimeout { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>
    /// After the response head: a body (either way) or an upgraded connection that moves no byte for this long is cut
    /// on both sides. YARP's ActivityTimeout default; it also bounds a client that stops reading.
    /// </summary>
    public TimeSpan ActivityTimeout { get; init; } = DefaultActivityTimeout;
    internal static readonly TimeSpan DefaultActivityTimeout = TimeSpan.FromSeconds(100);
    internal static readonly TimeSpan MaxActivityTimeout = TimeSpan.FromHours(24);
    public TlsConfig? Tls { get; init; }

    /// <summary>The highest max_request_headers the proxy's listeners accept (Kestrel reads headers before any routing).</summary>
    public const long HeaderLimitCeiling = 256 * 1024;
}

/// <summary>HTTPS in the proxy: certificate and key as PEM files (reloaded when they change), or ACME.</summary>
public sealed record TlsConfig
{
    public required IPEndPoint Listen { get; init; }
    public string? CertFile { get; init; }
    public string? KeyFile { get; init; }
    /// <summary>Certificates from an ACME server for every name in proxy.hosts (then CertFile and KeyFile are null).</summary>
    public AcmeConfig? Acme { get; init; }
    /// <summary>Plain HTTP requests (end to end) get a redirect to https.</summary>
    public bool RedirectHttp { get; init; } = true;
    public bool Hsts { get; init; }
}

/// <summary>proxy.tls.acme: the ACME server (directory URL), the account's contact, and an extra CA for the server's own HTTPS.</summary>
public sealed record AcmeConfig
{
    public required Uri Directory { get; init; }
    public string? Email { get; init; }
    /// <summary>Absolute path of a PEM CA certificate trusted for the ACME server's HTTPS (a private CA), or null.</summary>
    public string? CaCertPath { get; init; }

    public Acme.AcmeOptions ToOptions() => new() { Directory = Directory, Email = Email, CaCertPath = CaCertPath };
}

/// <summary>
/// The agent's files for an app: the instance log (logs/&lt;app&gt;/current.log) rotates at max_size and keeps
/// `retain` rotated files; access_log (off by default: a line per request costs the proxy) writes one line per
/// proxied request to logs/&lt;app&gt;/access/current.log, rotated the same way.
/// </summary>
public sealed record LogsConfig
{
    public long MaxSize { get; init; } = 10L << 20;
    public int Retain { get; init; } = 5;
    public bool AccessLog { get; init; }
}

/// <summary>The HTTP check each instance must pass (readiness for `ready: http`, and liveness while it runs).</summary>
public sealed record InstanceHealthConfig
{
    public string Path { get; init; } = "/health";
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(1);
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
    public int Retries { get; init; } = 3;
    public TimeSpan StartPeriod { get; init; } = TimeSpan.Zero;
}

public sealed record RollingConfig
{
    public int Parallelism { get; init; } = 1;
    public RollingOrder Order { get; init; } = RollingOrder.StartFirst;
    public TimeSpan Delay { get; init; } = TimeSpan.Zero;
    public TimeSpan Monitor { get; init; } = TimeSpan.FromSeconds(5);
    public FailureAction FailureAction { get; init; } = FailureAction.Rollback;
    public double MaxFailureRatio { get; init; }
    /// <summary>router: haproxy (top-level `router` and `haproxy`): each instance added to and removed from this HAProxy backend.</summary>
    public HaproxyRouterConfig? Haproxy { get; init; }
}

/// <summary>Blue-green: the old set stays warm out of rotation for keep_previous; the new one is watched for monitor.</summary>
public sealed record BlueGreenConfig
{
    public TimeSpan KeepPrevious { get; init; } = TimeSpan.FromMinutes(10);
    public TimeSpan Monitor { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>A fraction: 0.01 is 1%.</summary>
    public double MaxErrorRate { get; init; } = 0.01;
    /// <summary>builtin: Cutover's proxy switches; nginx: Cutover rewrites an upstream file and reloads nginx;
    /// haproxy: Cutover changes an HAProxy backend's servers through its runtime API.</summary>
    public string Router { get; init; } = "builtin";
    public NginxRouterConfig? Nginx { get; init; }
    public HaproxyRouterConfig? Haproxy { get; init; }
}

/// <summary>`haproxy:`: the admin-level stats socket and the backend whose servers Cutover manages.</summary>
public sealed record HaproxyRouterConfig
{
    public required string Socket { get; init; }
    public required string Backend { get; init; }
}

public sealed record NginxRouterConfig
{
    public required string UpstreamFile { get; init; }
    public string UpstreamName { get; init; } = "app_backend";
    public string Test { get; init; } = "nginx -t";
    public string Reload { get; init; } = "nginx -s reload";
}
