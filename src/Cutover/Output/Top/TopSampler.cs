using Cutover.Agent;
using Cutover.Deploy;

namespace Cutover.Cli.Output.Top;

/// <summary>
/// Reads the local agent once per call (GET /v1/agent, /v1/apps, /v1/metrics) and turns it into a <see cref="TopFrame"/>
/// with the rates of the last <see cref="Window"/>. Requests/s and the error rate come from the agent's Prometheus
/// counters; an agent without GET /v1/metrics still has its proxy counters in /v1/apps, which give both (errors then
/// being the proxy's own 502/503/504), so top works against an older agent, without CPU and p99.
/// </summary>
public sealed class TopSampler(AgentClient client, string socket)
{
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(10);

    public const string Requests = "cutover_proxy_requests_total";
    public const string Duration = "cutover_proxy_request_duration_seconds";
    public const string Memory = "cutover_instance_memory_bytes";
    public const string Cpu = "cutover_instance_cpu_seconds_total";
    // The proxy counters of /v1/apps, fed into the same window under names of top's own (never served by anyone).
    private const string ProxyAnswered = "top_proxy_answered_total";
    private const string ProxyFailed = "top_proxy_failed_total";

    private readonly MetricWindow _window = new(Window);

    /// <summary>How long one reading may take: an agent that hangs shows as such, it never freezes the screen.</summary>
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(5);

    public async Task<TopFrame> SampleAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(AnswerTimeout);
        try
        {
            return await ReadAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new TopFrame(DateTimeOffset.UtcNow, null, [], false, $"the agent did not answer within {AnswerTimeout.TotalSeconds:0} s ({socket})");
        }
    }

    private async Task<TopFrame> ReadAsync(CancellationToken cancellationToken)
    {
        TopAgent agent;
        IReadOnlyList<AppView> apps;
        try
        {
            var info = await client.InfoAsync(cancellationToken);
            agent = new TopAgent(info.Pid, info.Version);
            apps = await client.AppsAsync(cancellationToken);
        }
        catch (HttpRequestException e)
        {
            var why = File.Exists(socket) ? $"nothing answers on {socket}: {(e.InnerException ?? e).Message}" : $"there is no {socket}";
            return new TopFrame(DateTimeOffset.UtcNow, null, [], false, $"the agent is not running ({why}); `cutover deploy` starts it, or run `cutover agent`");
        }
        catch (DeployException e)
        {
            // An answer Cutover cannot read (another version's agent): said on the screen, and top keeps asking.
            return new TopFrame(DateTimeOffset.UtcNow, null, [], false, e.Message);
        }
        string? error = null;
        string? text = null;
        try
        {
            text = await client.MetricsAsync(cancellationToken);
        }
        catch (HttpRequestException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            // An agent that predates GET /v1/metrics: its proxy counters still give requests/s and errors.
        }
        catch (HttpRequestException e)
        {
            error = $"the agent's metrics (GET /v1/metrics): {e.Message}";
        }
        var samples = new List<MetricSample>();
        if (text is not null)
        {
            try
            {
                samples.AddRange(PrometheusTextReader.Parse(text));
            }
            catch (FormatException e)
            {
                error = $"the agent's metrics cannot be read: {e.Message}";
            }
        }
        var at = DateTimeOffset.UtcNow;
        foreach (var app in apps.Where(a => a.ProxyCounters is not null))
        {
            var labels = new Dictionary<string, string> { ["app"] = app.App };
            samples.Add(new MetricSample(ProxyAnswered, labels, app.ProxyCounters!.Served + app.ProxyCounters.Failed));
            samples.Add(new MetricSample(ProxyFailed, labels, app.ProxyCounters.Failed));
        }
        _window.Add(at, samples);
        return new TopFrame(at, agent, apps.Select(Describe).ToList(), text is not null, error);
    }

    private AppTop Describe(AppView app)
    {
        bool OfApp(MetricSample s) => s.Label("app") == app.App;
        double? requests, errorRate;
        if (_window.Has(Requests, OfApp))
        {
            var byCode = _window.Increases(Requests, OfApp);
            var total = byCode.Sum(c => c.Increase);
            requests = _window.Rate(Requests, OfApp);
            errorRate = requests is null ? null : total > 0 ? byCode.Where(c => c.Series.Label("code") is ['5', ..]).Sum(c => c.Increase) / total : 0;
        }
        else
        {
            var total = _window.Increases(ProxyAnswered, OfApp).Sum(c => c.Increase);
            requests = _window.Rate(ProxyAnswered, OfApp);
            errorRate = requests is null ? null : total > 0 ? _window.Increases(ProxyFailed, OfApp).Sum(c => c.Increase) / total : 0;
        }
        var p99 = _window.Quantile(0.99, Duration, OfApp);
        var covered = _window.Covered;
        var instances = app.Instances.Select(i =>
        {
            bool OfInstance(MetricSample s) => OfApp(s) && s.Label("instance") == i.Id;
            var cpu = _window.Has(Cpu, OfInstance) && covered > TimeSpan.Zero ? _window.Increases(Cpu, OfInstance).Sum(c => c.Increase) / covered.TotalSeconds * 100 : (double?)null;
            var memory = _window.Latest(Memory, OfInstance).Select(s => (long?)s.Value).FirstOrDefault() ?? i.MemoryBytes;
            return new InstanceTop(i.Id, i.Process, i.State, i.Release, i.UptimeSeconds, Round(cpu, 2), memory, i.Restarts, i.Problem);
        }).ToList();
        return new AppTop(app.App, app.Release, app.Proxy, Round(requests, 2), Round(errorRate, 5), Round(p99, 6), Math.Round(covered.TotalSeconds, 1), app.Deploying,
            app.Traffic?.Maintenance ?? false, app.Traffic is { PausedUntil: { } until } && until > DateTimeOffset.UtcNow, instances);
    }

    /// <summary>JSON readers get the precision the screen could ever show, not a double's noise.</summary>
    private static double? Round(double? value, int digits) => value is { } v ? Math.Round(v, digits) : null;
}
