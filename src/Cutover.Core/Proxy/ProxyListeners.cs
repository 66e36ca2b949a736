using System.Net;
using Cutover.Config;
using Microsoft.Extensions.Logging;

namespace Cutover.Proxy;

/// <summary>
/// The agent's listeners: one per distinct address (proxy.listen, proxy.tls.listen), started when the first app
/// names it and stopped when the last one leaves. Adding, changing or removing an app only swaps route tables, so
/// another app's requests and connections are never touched. Conflicts are refused before anything changes: two apps
/// claiming the same host and path prefix on one address, or one address used plain by one app and TLS by another.
/// </summary>
/// <param name="acme">The agent's ACME certificates: plain listeners answer its http-01 challenges for every host, before routing.</param>
public sealed class ProxyListeners(ILoggerFactory loggerFactory, Cutover.Acme.AcmeCertificates? acme = null) : IAsyncDisposable
{
    public Cutover.Acme.AcmeCertificates? Acme => acme;

    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<Listener> _listeners = [];
    /// <summary>The socket threads every listener's connections run on: one set per agent, however many listeners.</summary>
    private readonly Platform.Epoll.EpollLoops _loops = Listener.NewLoops(loggerFactory);

    /// <summary>How many socket threads the listeners' connections run on.</summary>
    public int SocketThreads => _loops.Count;

    /// <summary>The addresses <paramref name="config"/> names, plain and TLS.</summary>
    private static IEnumerable<(IPEndPoint Endpoint, bool Tls)> AddressesOf(ProxyConfig config) =>
        config.Tls is { } tls ? [(config.Listen, false), (tls.Listen, true)] : [(config.Listen, false)];

    /// <summary>
    /// The listener for <paramref name="endpoint"/>, if one runs. Port 0 is never shared (each asks for a port of its
    /// own): only the listener <paramref name="app"/> already has is found.
    /// </summary>
    private Listener? Find(IPEndPoint endpoint, ProxyServer app) =>
        _listeners.FirstOrDefault(l => l.Requested.Equals(endpoint) && (endpoint.Port != 0 || l.Routes.Contains(app)));

    /// <summary>Routes <paramref name="app"/> as <paramref name="config"/> says, starting the listeners it needs. Returns its plain listener.</summary>
    public async Task<Listener> AddAsync(ProxyServer app, ProxyConfig config, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (Refusal(app, config) is { } refusal) throw new DeployException(refusal);
            var started = new List<Listener>();
            try
            {
                foreach (var (endpoint, tls) in AddressesOf(config))
                    if (Find(endpoint, app) is null)
                        started.Add(await Listener.StartAsync(endpoint, tls, loggerFactory, acme?.Challenges, cancellationToken, _loops));
            }
            catch
            {
                foreach (var listener in started) await listener.DisposeAsync();
                throw;
            }
            _listeners.AddRange(started);
            return Apply(app, config, started);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// A routed app's new proxy section: its routes swap in place, a new address gets its listener started, and a
    /// listener it leaves stops when no other app uses it. Returns why not (a conflict, or an address in use) and
    /// then changes nothing.
    /// </summary>
    public async Task<string?> RerouteAsync(ProxyServer app, ProxyConfig config, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (Refusal(app, config) is { } refusal) return refusal;
            var started = new List<Listener>();
            try
            {
                foreach (var (endpoint, tls) in AddressesOf(config))
                    if (Find(endpoint, app) is null)
                        started.Add(await Listener.StartAsync(endpoint, tls, loggerFactory, acme?.Challenges, cancellationToken, _loops));
            }
            catch (Exception e)
            {
                // An address in use, or cancelled: the ones started here go again, nothing else changed.
                foreach (var listener in started) await listener.DisposeAsync();
                if (e is DeployException) return e.Message;
                throw;
            }
            var kept = AddressesOf(config).Select(a => Find(a.Endpoint, app)).Where(l => l is not null).ToList();
            _listeners.AddRange(started);
            Apply(app, config, started);
            foreach (var left in _listeners.Where(l => l.Routes.Contains(app) && !kept.Contains(l) && !started.Contains(l)).ToList())
            {
                left.Swap(left.Routes.Without(app));
                if (!left.Routes.IsEmpty) continue;
                _listeners.Remove(left);
                await left.DisposeAsync();
            }
            return null;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Why <paramref name="app"/> may not take the routes <paramref name="config"/> asks for, or null.</summary>
    private string? Refusal(ProxyServer app, ProxyConfig config)
    {
        foreach (var (endpoint, tls) in AddressesOf(config))
        {
            if (Find(endpoint, app) is not { } listener) continue;
            if (listener.IsTls != tls)
            {
                var owner = listener.Routes.Routes.FirstOrDefault()?.App.App ?? "another app";
                return $"{endpoint} serves {(listener.IsTls ? "TLS" : "plain HTTP")} for app '{owner}'; app '{app.App}' cannot use it for {(tls ? "TLS (proxy.tls.listen)" : "plain HTTP (proxy.listen)")}";
            }
            if (listener.Routes.Conflict(RouteTable.RoutesOf(app, config.Hosts, config.PathPrefix)) is var (existing, _))
                return $"app '{existing.App.App}' already claims {existing.HostText} with path_prefix {existing.PathPrefix} on {endpoint}; give app '{app.App}' other proxy.hosts or another path_prefix";
        }
        return null;
    }

    /// <summary>Swaps the app's routes into every listener it names (under the gate); returns its plain listener.</summary>
    private Listener Apply(ProxyServer app, ProxyConfig config, List<Listener> started)
    {
        Listener plain = null!;
        foreach (var (endpoint, tls) in AddressesOf(config))
        {
            var listener = started.FirstOrDefault(l => ReferenceEquals(l.Requested, endpoint)) ?? Find(endpoint, app)!;
            listener.Swap(listener.Routes.With(app, RouteTable.RoutesOf(app, config.Hosts, config.PathPrefix)));
            if (!tls) plain = listener;
        }
        return plain;
    }

    /// <summary>
    /// A plain listener on <paramref name="endpoint"/> even before any app routes there: the ACME server's http-01
    /// validation must reach it while the certificate is obtained, before the app's routes are added.
    /// </summary>
    public async Task EnsurePlainListenerAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        if (endpoint.Port == 0) return; // a port nobody knows; no CA could dial it
        await _gate.WaitAsync(cancellationToken);
        try
        {
            if (_listeners.Any(l => l.Requested.Equals(endpoint))) return;
            _listeners.Add(await Listener.StartAsync(endpoint, tls: false, loggerFactory, acme?.Challenges, cancellationToken, _loops));
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Every listener's socket with its address and kind, for the agent upgrade (issue 12) to send to the new agent.
    /// The sockets stay this agent's: it keeps accepting until the new one does, then disposes as usual (closing
    /// only its own descriptors; the new agent's copies keep the same sockets, and their queues, open).
    /// </summary>
    public async Task<IReadOnlyList<(Platform.HandedListener Listener, System.Net.Sockets.Socket Socket)>> HandedAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            return _listeners.Select(l => l.Handed).ToList();
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Starts a listener on each socket the old agent handed over, with no routes yet (404) until the apps are added
    /// back: <see cref="AddAsync"/> then finds them by address instead of binding. Call before any app is added; a
    /// listener that no app claims afterwards goes with <see cref="StopUnusedAsync"/>. All or none: on failure the
    /// ones started here are stopped and every socket received is closed.
    /// </summary>
    /// <param name="accept">
    /// False (the agent upgrade): the listeners do not accept until <see cref="StartAcceptingAsync"/>, called once every
    /// app's routes are back, so the new agent never answers a request with a route table still being filled.
    /// </param>
    public async Task AdoptAsync(IReadOnlyList<Platform.ReceivedListener> received, CancellationToken cancellationToken, bool accept = true)
    {
        await _gate.WaitAsync(cancellationToken);
        var started = new List<Listener>();
        try
        {
            foreach (var listener in received)
            {
                if (_listeners.Concat(started).Any(l => l.Requested.Equals(listener.Listener.Address)))
                    throw new Platform.HandoverException($"listener {listener.Listener.Address} was handed over twice, or this agent listens there already");
                started.Add(await Listener.AdoptAsync(listener, loggerFactory, acme?.Challenges, cancellationToken, accept, _loops));
            }
            _listeners.AddRange(started);
        }
        catch
        {
            foreach (var listener in started) await listener.DisposeAsync();
            // The ones not started (Listener.AdoptAsync closed a failed one already; Dispose twice is harmless).
            foreach (var left in received.Where(r => !started.Any(l => ReferenceEquals(l.ListeningSocket, r.Socket)))) left.Socket.Dispose();
            throw;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Every adopted listener not accepting yet starts accepting (all or none: a failure stops the ones started here).</summary>
    public async Task StartAcceptingAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            foreach (var listener in _listeners.Where(l => !l.Accepting)) await listener.StartAcceptingAsync(cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Stops listeners no app routes through (one <see cref="EnsurePlainListenerAsync"/> started for a deploy that then failed).</summary>
    public async Task StopUnusedAsync()
    {
        await _gate.WaitAsync();
        try
        {
            foreach (var listener in _listeners.Where(l => l.Routes.IsEmpty).ToList())
            {
                _listeners.Remove(listener);
                await listener.DisposeAsync();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>The plain listener that routes <paramref name="app"/>.</summary>
    public Listener PlainListenerOf(ProxyServer app) => _listeners.First(l => !l.IsTls && l.Routes.Contains(app));

    /// <summary>The TLS listener that routes <paramref name="app"/> (tests look at its handshakes).</summary>
    internal Listener TlsListenerOf(ProxyServer app) => _listeners.First(l => l.IsTls && l.Routes.Contains(app));

    /// <summary>Takes the app's routes away; a listener no app uses any more is stopped.</summary>
    public async Task RemoveAsync(ProxyServer app)
    {
        await _gate.WaitAsync();
        try
        {
            foreach (var listener in _listeners.Where(l => l.Routes.Contains(app)).ToList())
            {
                listener.Swap(listener.Routes.Without(app));
                if (!listener.Routes.IsEmpty) continue;
                _listeners.Remove(listener);
                await listener.DisposeAsync();
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Every listener stops (the old agent after an upgrade: the new one accepts on the same sockets), all at once; long
    /// connections are cut when <paramref name="drained"/> fires.
    /// </summary>
    public async Task StopAllAsync(CancellationToken drained)
    {
        await Task.WhenAll(_listeners.Select(l => l.StopAsync(drained).AsTask()));
        _listeners.Clear();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var listener in _listeners) await listener.DisposeAsync();
        _listeners.Clear();
        _loops.Dispose();
    }
}
