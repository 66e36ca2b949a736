using Prometheus;

namespace Cutover.Metrics;

/// <summary>
/// The agent's meters, in a registry of their own (never prometheus-net's static default one, which would also bring in
/// its process and runtime metrics). One instance per agent, created before any app so counters outlive every deploy,
/// restart and reconfigure of an app: they reset only when the agent process does (a restart or an upgrade).
/// Names and labels are issue 15's; every label value is bounded (app, process type, instance slot id, status code,
/// strategy, outcome, release, host name): never a path or a client address.
/// </summary>
public sealed class AgentMetrics
{
    /// <summary>client_golang's defaults (Prometheus' conventions, in seconds), not OTel's 0..10000 ms-shaped ones.</summary>
    private static readonly double[] RequestBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>A deploy's activation takes seconds to minutes.</summary>
    private static readonly double[] DeployBuckets = [1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];

    private readonly SemaphoreSlim _scrape = new(1, 1);
    private readonly InstanceSampler _sampler;

    public AgentMetrics()
    {
        _sampler = new InstanceSampler(this);
        Registry = Prometheus.Metrics.NewCustomRegistry();
        var factory = Prometheus.Metrics.WithCustomRegistry(Registry);
        Requests = factory.CreateCounter("cutover_proxy_requests_total", "Responses the proxy gave for the app, by status code.", "app", "code");
        RequestDuration = factory.CreateHistogram("cutover_proxy_request_duration_seconds", "Time from the request reaching the proxy to its response finishing.",
            new HistogramConfiguration { LabelNames = ["app"], Buckets = RequestBuckets });
        ActiveConnections = factory.CreateGauge("cutover_proxy_active_connections", "Requests (and upgraded connections) the proxy has open to the app's instances.", "app");
        Retries = factory.CreateCounter("cutover_proxy_retries_total", "Requests sent to a second instance because the first could not be reached.", "app");
        SocketThreadCrossings = factory.CreateCounter("cutover_proxy_socket_thread_crossings_total",
            "Responses read from an instance on another socket thread than the client connection's: each wakes a second thread. Near 0 when the agent keeps every connection and its upstream connections on one thread.", "app");
        Instances = factory.CreateGauge("cutover_instances", "Instances by process type and state.", "app", "process", "state");
        Restarts = factory.CreateCounter("cutover_instance_restarts_total", "Instances restarted by supervision (exit, failed health checks, max_memory).", "app", "process");
        Memory = factory.CreateGauge("cutover_instance_memory_bytes", "Resident memory of the instance's app processes (its process group without the agent's wrapper).", "app", "process", "instance");
        Cpu = factory.CreateCounter("cutover_instance_cpu_seconds_total", "CPU time (user + system) of the instance's app processes.", "app", "process", "instance");
        Deploys = factory.CreateCounter("cutover_deploys_total", "Activations of a release by the agent (deploys and rollbacks), by outcome.", "app", "strategy", "outcome");
        DeployDuration = factory.CreateHistogram("cutover_deploy_duration_seconds", "How long the agent took to move the app's instances to a release.",
            new HistogramConfiguration { LabelNames = ["app"], Buckets = DeployBuckets });
        ReleaseInfo = factory.CreateGauge("cutover_release_info", "1 for the release the app's instances run.", "app", "release", "revision");
        CertificateExpiry = factory.CreateGauge("cutover_certificate_expiry_timestamp_seconds", "When the certificate served for the host expires (Unix time).", "host");
    }

    public CollectorRegistry Registry { get; }
    internal Counter Requests { get; }
    internal Histogram RequestDuration { get; }
    internal Gauge ActiveConnections { get; }
    internal Counter Retries { get; }
    internal Counter SocketThreadCrossings { get; }
    internal Gauge Instances { get; }
    internal Counter Restarts { get; }
    internal Gauge Memory { get; }
    internal Counter Cpu { get; }
    internal Counter Deploys { get; }
    internal Histogram DeployDuration { get; }
    internal Gauge ReleaseInfo { get; }
    internal Gauge CertificateExpiry { get; }

    /// <summary>The per-request side for one app: its series resolved once, so a request costs no lookup or allocation.</summary>
    public ProxyRequestMetrics ForApp(string app) => new(this, app);

    /// <summary>Supervision restarted an instance of <paramref name="process"/>.</summary>
    public void InstanceRestarted(string app, string process) => Restarts.WithLabels(app, process).Inc();

    /// <summary>An activation ended: deploy counter and duration; outcome is the activation's (live, rolled_back, ...).</summary>
    public void DeployFinished(string app, string strategy, string outcome, TimeSpan duration)
    {
        Deploys.WithLabels(app, strategy, outcome).Inc();
        DeployDuration.WithLabels(app).Observe(duration.TotalSeconds);
    }

    /// <summary>
    /// Prometheus text (format 0.0.4), as both /metrics and the control socket's /v1/metrics serve it: the live gauges
    /// sampled from <paramref name="apps"/>, then every series. One scrape at a time (the sampler removes what is gone);
    /// rendered into memory first, so a slow reader never holds the next scrape up.
    /// </summary>
    public async Task<byte[]> ScrapeAsync(Func<IReadOnlyList<InstanceSampler.AppSample>> apps, CancellationToken cancellationToken)
    {
        await _scrape.WaitAsync(cancellationToken);
        try
        {
            _sampler.Sample(apps());
            using var text = new MemoryStream();
            await Registry.CollectAndExportAsTextAsync(text, cancellationToken);
            return text.ToArray();
        }
        finally
        {
            _scrape.Release();
        }
    }

    public const string ContentType = "text/plain; version=0.0.4; charset=utf-8";
}
