using Cutover.Metrics;
using Microsoft.Extensions.Logging;

namespace Cutover.Agent;

/// <summary>The agent's metrics: /metrics on its own address, /v1/metrics on the control socket, one scrape for both.</summary>
public sealed partial class AgentServer
{
    private async Task StartMetricsAsync(CancellationToken cancellationToken)
    {
        if (MetricsListen is not { } address) return;
        _metricsEndpoint = await MetricsEndpoint.StartAsync(address, ScrapeAsync, _loggers, cancellationToken);
        _logger.LogInformation("metrics on http://{Address}/metrics", _metricsEndpoint.Bound);
    }

    /// <summary>
    /// After an upgrade: the old agent holds the address until it leaves (it lets it go first thing), so binding is
    /// retried for a while; never a reason to stop serving, only a line in agent.log.
    /// </summary>
    private async Task StartMetricsAfterTakeoverAsync(CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await StartMetricsAsync(cancellationToken);
                return;
            }
            catch (DeployException e) when (attempt < 100)
            {
                _logger.LogDebug("metrics address not free yet: {Error}", e.Message);
                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
            }
            catch (DeployException e)
            {
                _logger.LogError("{Error}", e.Message);
                return;
            }
        }
    }

    /// <summary>What the old agent's spawn passed on (its address, or off); a value the new agent cannot read is logged, not fatal.</summary>
    private static System.Net.IPEndPoint? MetricsAddressAfterTakeover(ILogger logger)
    {
        try
        {
            return MetricsAddress.Resolve(null, Environment.GetEnvironmentVariable);
        }
        catch (InputException e)
        {
            logger.LogError("no metrics after the upgrade: {Error}", e.Message);
            return null;
        }
    }

    /// <summary>
    /// On the thread pool: a scrape reads /proc for a few milliseconds, and with inline socket completions the request
    /// arrives on an epoll thread that also forwards proxied requests.
    /// </summary>
    private Task<byte[]> ScrapeAsync(CancellationToken cancellationToken) =>
        Task.Run(() => _metrics.ScrapeAsync(AppSamples, cancellationToken), cancellationToken);

    /// <summary>The apps as they are now. Activations add apps on their own threads, so the copy is retried when one did meanwhile.</summary>
    private IReadOnlyList<InstanceSampler.AppSample> AppSamples()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return _apps.Values.ToArray().Select(runtime => new InstanceSampler.AppSample(runtime, CertificatesOf(runtime))).ToList();
            }
            catch (InvalidOperationException) when (attempt < 5)
            {
            }
        }
    }

    /// <summary>The certificates the app serves: its ACME one's names, or its certificate files' for each of proxy.hosts.</summary>
    private IReadOnlyList<(string Host, DateTimeOffset NotAfter)> CertificatesOf(Supervisor.AppRuntime runtime)
    {
        var tls = runtime.Settings.Proxy.Tls;
        if (tls?.Acme is { } acme)
            return _acme.StatusOf(runtime.Config.App, acme) is { NotAfter: { } notAfter } status ? status.Names.Select(n => (n, notAfter)).ToList() : [];
        if (tls is not null && runtime.Proxy.Certificates is Proxy.CertificateFiles files)
        {
            var certificate = files.Certificate;
            var notAfter = new DateTimeOffset(certificate.NotAfter.ToUniversalTime());
            var hosts = runtime.Settings.Proxy.Hosts.Count > 0 ? runtime.Settings.Proxy.Hosts
                : [certificate.GetNameInfo(System.Security.Cryptography.X509Certificates.X509NameType.DnsName, forIssuer: false)];
            return hosts.Select(h => (h, notAfter)).ToList();
        }
        return [];
    }
}
