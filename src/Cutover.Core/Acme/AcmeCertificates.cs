using Cutover.Config;
using Microsoft.Extensions.Logging;

namespace Cutover.Acme;

/// <summary>
/// The agent's ACME side: one <see cref="Http01Challenges"/> that every plain listener answers from, and per app with
/// proxy.tls.acme one <see cref="CertificateManager"/> (a manager keeps one name set, and each app has its own
/// proxy.hosts) over the store CUTOVER_HOME/certs/&lt;CA&gt;/, renewing in the background for the agent's life.
/// </summary>
public sealed class AcmeCertificates(string certsRoot, ILoggerFactory loggers) : IAsyncDisposable
{
    private readonly CancellationTokenSource _agentStopping = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _byApp = new(StringComparer.Ordinal);

    public Http01Challenges Challenges { get; } = new();

    /// <summary>The app's manager for this ACME server, created (and its renewal loop started) on first use.</summary>
    public CertificateManager ManagerFor(string app, AcmeConfig config)
    {
        Entry? replaced;
        Entry entry;
        lock (_gate)
        {
            if (_byApp.TryGetValue(app, out var existing) && existing.Config == config) return existing.Manager;
            replaced = existing;
            var store = CertificateStore.ForAcmeDirectory(certsRoot, config.Directory);
            var client = new AcmeClient(config.ToOptions(), store.LoadOrCreateAccountKey());
            var manager = new CertificateManager(store, new AcmeIssuer(client, Challenges), logger: loggers.CreateLogger<CertificateManager>());
            var renewal = CancellationTokenSource.CreateLinkedTokenSource(_agentStopping.Token);
            entry = new Entry(config, manager, client, renewal, Task.Run(() => manager.RunAsync(renewal.Token)));
            _byApp[app] = entry;
        }
        // Another CA for the app (a changed directory or ca_cert): the old manager's loop ends, its certificate is not served again.
        if (replaced is not null) _ = StopAsync(replaced);
        return entry.Manager;
    }

    /// <summary>The app's certificate and renewal state, for `cutover status`; null when the app has no ACME certificate.</summary>
    public CertificateStatus? StatusOf(string app)
    {
        lock (_gate) return _byApp.TryGetValue(app, out var entry) ? entry.Manager.Status : null;
    }

    public async ValueTask DisposeAsync()
    {
        await _agentStopping.CancelAsync();
        List<Entry> entries;
        lock (_gate)
        {
            entries = [.. _byApp.Values];
            _byApp.Clear();
        }
        foreach (var entry in entries) await StopAsync(entry);
        _agentStopping.Dispose();
    }

    private static async Task StopAsync(Entry entry)
    {
        await entry.Renewal.CancelAsync();
        try
        {
            await entry.Loop;
        }
        catch (OperationCanceledException)
        {
            // the loop's way of ending
        }
        entry.Renewal.Dispose();
        entry.Client.Dispose();
    }

    private sealed record Entry(AcmeConfig Config, CertificateManager Manager, AcmeClient Client, CancellationTokenSource Renewal, Task Loop);
}
