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
    /// <summary>By app and ACME config: a deploy that names another CA gets its own manager while the old one still serves.</summary>
    private readonly Dictionary<(string App, AcmeConfig Config), Entry> _managers = [];

    public Http01Challenges Challenges { get; } = new();

    /// <summary>The app's manager for this ACME config, created (and its renewal loop started) on first use.</summary>
    public CertificateManager ManagerFor(string app, AcmeConfig config)
    {
        lock (_gate)
        {
            if (_managers.TryGetValue((app, config), out var existing)) return existing.Manager;
            var store = CertificateStore.ForAcmeDirectory(certsRoot, config.Directory);
            var client = new AcmeClient(config.ToOptions(), store.LoadOrCreateAccountKey());
            var manager = new CertificateManager(store, new AcmeIssuer(client, Challenges), logger: loggers.CreateLogger<CertificateManager>());
            var renewal = CancellationTokenSource.CreateLinkedTokenSource(_agentStopping.Token);
            _managers[(app, config)] = new Entry(manager, client, renewal, Task.Run(() => manager.RunAsync(renewal.Token)));
            return manager;
        }
    }

    /// <summary>
    /// Ends the app's managers for every ACME config but <paramref name="inForce"/> (its config after a deploy, or
    /// the one still in force after a failed one): nothing renews a certificate no route serves.
    /// </summary>
    public async Task RetireAsync(string app, AcmeConfig? inForce)
    {
        List<Entry> retired;
        lock (_gate)
        {
            var keys = _managers.Keys.Where(k => k.App == app && k.Config != inForce).ToList();
            retired = keys.Select(k => _managers[k]).ToList();
            foreach (var key in keys) _managers.Remove(key);
        }
        foreach (var entry in retired) await StopAsync(entry);
    }

    /// <summary>The certificate and renewal state of the app's config in force, for `cutover status`; null without one.</summary>
    public CertificateStatus? StatusOf(string app, AcmeConfig config)
    {
        lock (_gate) return _managers.TryGetValue((app, config), out var entry) ? entry.Manager.Status : null;
    }

    private bool _disposed;

    public async ValueTask DisposeAsync()
    {
        // Twice on every agent exit (its shutdown, then its DisposeAsync; a let-go new agent too): the second finds
        // nothing to stop, and must not throw on the disposed source, which crashed the leaving agent (exit 134).
        if (_disposed) return;
        _disposed = true;
        await _agentStopping.CancelAsync();
        List<Entry> entries;
        lock (_gate)
        {
            entries = [.. _managers.Values];
            _managers.Clear();
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

    private sealed record Entry(CertificateManager Manager, AcmeClient Client, CancellationTokenSource Renewal, Task Loop);
}
