using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Cutover.Proxy;

/// <summary>
/// One Kestrel on one address, plain HTTP/1.1 or TLS (HTTP/2 and HTTP/1.1 by ALPN), shared by every app of the agent
/// that names the address. Each request goes to the app its <see cref="RouteTable"/> picks (404 from here when none);
/// TLS handshakes take the certificate of the app that serves the SNI name. The listener accepts itself
/// (<see cref="PlainFrontEnd"/>, or <see cref="TlsFrontEnd"/>, which also ends TLS), serves HTTP/1.1 on Http1/'s fast
/// path, and its Kestrel serves only what that hands it. Apps come and go by swapping the table: the listener itself is
/// started once and stopped only when no app uses it.
/// The listener owns its listening socket: it binds and listens itself, so the socket can be handed to a new agent
/// (issue 12); <see cref="DisposeAsync"/> closes it after the front end has stopped accepting on it.
/// </summary>
public sealed class Listener : IAsyncDisposable
{
    internal static readonly List<SslApplicationProtocol> Alpn = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];
    private readonly WebApplication _web;
    private readonly IHttpForwarder _forwarder;
    private RouteTable _routes = RouteTable.Empty;
    /// <summary>The agent's http-01 answers, asked before routing on a plain listener; null on TLS and without an agent.</summary>
    private readonly Acme.Http01Challenges? _challenges;

    private Listener(WebApplication web, Socket listening, IPEndPoint requested, bool tls, Acme.Http01Challenges? challenges,
        Platform.Epoll.EpollLoops loops, bool ownsLoops)
    {
        Loops = loops;
        _ownsLoops = ownsLoops;
        _challenges = tls ? null : challenges;
        _web = web;
        ListeningSocket = listening;
        _forwarder = web.Services.GetRequiredService<IHttpForwarder>();
        Requested = requested;
        IsTls = tls;
    }

    public IPEndPoint Requested { get; }
    /// <summary>The socket threads connections run on (<see cref="Platform.Epoll.EpollLoops"/>): the agent's, or this listener's own.</summary>
    internal Platform.Epoll.EpollLoops Loops { get; }
    private readonly bool _ownsLoops;
    /// <summary>The bound address (differs from <see cref="Requested"/> only for port 0).</summary>
    public IPEndPoint Bound { get; private set; } = null!;
    public bool IsTls { get; }
    /// <summary>The bound, listening socket this listener owns and its front end accepts on (closed by <see cref="DisposeAsync"/>).</summary>
    public Socket ListeningSocket { get; }
    public RouteTable Routes => Volatile.Read(ref _routes);
    /// <summary>A plain listener that answers the agent's ACME http-01 challenges before routing.</summary>
    internal bool AnswersChallenges => _challenges is not null;

    private long _fastPathRequests;
    private long _handedOver;
    /// <summary>Requests the HTTP/1.1 fast path answered itself, added when each connection ends (Http1/FastPathConnection).</summary>
    internal long FastPathRequests => Interlocked.Read(ref _fastPathRequests);
    /// <summary>Connections the fast path handed to Kestrel's HTTP pipeline (HTTP/2 by ALPN not counted).</summary>
    internal long HandedOver => Interlocked.Read(ref _handedOver);
    internal void CountFastPath(long requests) => Interlocked.Add(ref _fastPathRequests, requests);

    /// <summary>The fast path's parsers and buffers of closed connections, for the next ones (Http1/FastPathBuffers).</summary>
    internal Http1.FastPathBuffersPool FastPathBuffers { get; } = new(64);
    internal void CountHandOver() => Interlocked.Increment(ref _handedOver);

    /// <summary>Only <see cref="ProxyListeners"/> swaps, under its gate; readers see one table or the next.</summary>
    internal void Swap(RouteTable routes) => Volatile.Write(ref _routes, routes);

    /// <summary>Binds and listens on <paramref name="endpoint"/>, then starts accepting on that socket.</summary>
    public static async Task<Listener> StartAsync(IPEndPoint endpoint, bool tls, ILoggerFactory loggerFactory, Acme.Http01Challenges? challenges, CancellationToken cancellationToken,
        Platform.Epoll.EpollLoops? loops = null)
    {
        var listening = Bind(endpoint);
        try
        {
            return await StartAsync(listening, endpoint, tls, loggerFactory, challenges, loops, cancellationToken);
        }
        catch
        {
            listening.Dispose();
            throw;
        }
    }

    /// <summary>
    /// A listener on a socket another agent handed over (issue 12; <see cref="Platform.ListeningSocketHandover"/>):
    /// bound and listening already, with its queue of connections not yet accepted, which this listener accepts from
    /// here on. Owned from here (also when this throws: it is closed then).
    /// </summary>
    /// <param name="accept">
    /// False: the listener is built but does not accept yet (<see cref="StartAcceptingAsync"/> does, once the apps' routes are
    /// in): the old agent keeps accepting meanwhile, so no request meets a listener without routes (404).
    /// </param>
    public static async Task<Listener> AdoptAsync(Platform.ReceivedListener received, ILoggerFactory loggerFactory, Acme.Http01Challenges? challenges, CancellationToken cancellationToken, bool accept = true, Platform.Epoll.EpollLoops? loops = null)
    {
        try
        {
            return await StartAsync(received.Socket, received.Listener.Address, received.Listener.Kind == Platform.ListenerKind.Tls, loggerFactory, challenges, loops, cancellationToken, accept);
        }
        catch
        {
            received.Socket.Dispose();
            throw;
        }
    }

    /// <summary>What the handover sends for this listener: its address, its kind and its socket (sent as a duplicate; ours stays ours).</summary>
    public (Platform.HandedListener Listener, Socket Socket) Handed =>
        (new Platform.HandedListener((IPEndPoint)ListeningSocket.LocalEndPoint!, IsTls ? Platform.ListenerKind.Tls : Platform.ListenerKind.Plain), ListeningSocket);

    /// <summary>
    /// A socket bound and listening as Kestrel's own would be (SocketTransportOptions.CreateDefaultBoundListenSocket:
    /// dual mode for [::], its backlog), made here so that the listener, not Kestrel, owns it. Written out rather than
    /// calling Kestrel's helper, which leaves the socket to the finalizer when the bind fails.
    /// </summary>
    private static Socket Bind(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint.Address.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
            socket.Bind(endpoint);
            socket.Listen(new SocketTransportOptions().Backlog);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new DeployException(e.SocketErrorCode == SocketError.AddressAlreadyInUse
                ? $"the proxy cannot listen on {endpoint}: the address is already in use by another process"
                : $"the proxy cannot listen on {endpoint}: {e.Message}");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Starts a listener (its Kestrel, then its front end) on <paramref name="listening"/>, a socket already bound to <paramref name="requested"/> (or, for
    /// port 0, to a port of the kernel's choosing) and listening. The listener owns it from here, also when this
    /// throws: the caller disposes it then.
    /// </summary>
    private static async Task<Listener> StartAsync(Socket listening, IPEndPoint requested, bool tls, ILoggerFactory loggerFactory, Acme.Http01Challenges? challenges, Platform.Epoll.EpollLoops? loops, CancellationToken cancellationToken, bool accept = true)
    {
        var builder = Cutover.Platform.UnwatchedWebHost.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddHttpForwarder();
        // Stopping is bounded by the token StopAsync is given (an agent leaving after an upgrade: the longest
        // drain_timeout), never by the host's shutdown timeout (30 s unless configured), which would cut long
        // connections early whatever drain_timeout says.
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(o => o.ShutdownTimeout = Timeout.InfiniteTimeSpan);
        // Listeners accept themselves (PlainFrontEnd, TlsFrontEnd: they say why) and start each connection on Http1/'s
        // fast path; Kestrel only gets the connections its HTTP pipeline serves (TLS done) through this transport, its
        // only one: it binds and accepts nothing.
        var handOver = new HandOverTransport();
        builder.Services.RemoveAll<Microsoft.AspNetCore.Connections.IConnectionListenerFactory>();
        builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IConnectionListenerFactory>(handOver);
        builder.WebHost.ConfigureKestrel(k =>
        {
            // No socket behind this endpoint. Over TLS, HTTP/2 or HTTP/1.1 as the handshake's ALPN said; plain, HTTP/1.1
            // (Kestrel's default, as when it listened on the socket itself).
            k.Listen(new IPEndPoint(IPAddress.Loopback, 0), listen => listen.Protocols = HttpProtocols.Http1AndHttp2);
            k.AddServerHeader = false;
            // Per app, on each request (ProxyServer): headers are read before routing, so the listener only caps them.
            k.Limits.MaxRequestBodySize = null;
            k.Limits.MaxRequestHeadersTotalSize = (int)Config.ProxyConfig.HeaderLimitCeiling;
        });
        var web = builder.Build();
        var ownsLoops = loops is null;
        loops ??= NewLoops(loggerFactory);
        Listener listener;
        try
        {
            listener = new Listener(web, listening, requested, tls, challenges, loops, ownsLoops);
        }
        catch
        {
            if (ownsLoops) loops.Dispose();
            throw;
        }
        if (tls) listener._tlsFrontEnd = new TlsFrontEnd(listener, listening, handOver);
        else listener._plainFrontEnd = new PlainFrontEnd(listener, listening, handOver);
        web.Run(listener.DispatchAsync);
        // The address as configured (0.0.0.0 stays 0.0.0.0), with the port the kernel gave for port 0.
        listener.Bound = requested.Port != 0 ? requested : new IPEndPoint(requested.Address, ((IPEndPoint)listening.LocalEndPoint!).Port);
        if (accept) await listener.StartAcceptingAsync(cancellationToken);
        return listener;
    }

    /// <summary>
    /// Socket threads for one process (or one listener of its own), reporting what escapes a connection's code to the
    /// log: one per core, or as many as the operator's DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT says (the agent refuses a
    /// count that is not 1 or more: Platform/InlineSocketCompletions).
    /// </summary>
    internal static Platform.Epoll.EpollLoops NewLoops(ILoggerFactory loggerFactory)
    {
        var logger = loggerFactory.CreateLogger("Cutover.Proxy");
        var chosen = Environment.GetEnvironmentVariable(Platform.InlineSocketCompletions.ThreadCountVariable);
        int? count = uint.TryParse(chosen, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) && n >= 1 ? (int)Math.Min(n, 1024) : null;
        return new Platform.Epoll.EpollLoops(e => logger.LogError(e, "proxy: a connection's code failed on a socket thread"), count);
    }

    /// <summary>Whether the front end accepts on the socket (an adopted listener waits for its routes first).</summary>
    public bool Accepting { get; private set; }

    /// <summary>Kestrel starts, then the front end accepts on the socket. A failure disposes Kestrel (the socket is still the caller's to close).</summary>
    public async Task StartAcceptingAsync(CancellationToken cancellationToken)
    {
        if (Accepting) return;
        try
        {
            await _web.StartAsync(cancellationToken);
            _tlsFrontEnd?.Start();
            _plainFrontEnd?.Start();
        }
        catch
        {
            await _web.DisposeAsync();
            _webDisposed = true;
            throw;
        }
        Accepting = true;
    }

    private bool _webDisposed;
    /// <summary>A TLS listener's own accept loop and TLS (null on plain listeners, which Kestrel's transport accepts).</summary>
    private TlsFrontEnd? _tlsFrontEnd;
    /// <summary>A plain listener's own accept loop (null on TLS listeners).</summary>
    private PlainFrontEnd? _plainFrontEnd;
    /// <summary>The TLS connections open now (test hook: a handshake that failed or was abandoned leaves none behind).</summary>
    internal int OpenTlsConnections => _tlsFrontEnd?.OpenConnections ?? 0;
    /// <summary>The plain connections open now (test hook, as <see cref="OpenTlsConnections"/>).</summary>
    internal int OpenPlainConnections => _plainFrontEnd?.OpenConnections ?? 0;
    internal string DescribeOpenPlainConnections() => _plainFrontEnd?.DescribeOpen() ?? "";

    /// <summary>
    /// The TLS listener's OpenSSL contexts (null on plain listeners): one SSL_CTX per certificate in use, made on its first
    /// handshake and shared by every later one, keyed by the certificate context itself, so a reloaded or renewed
    /// certificate (a new context) gets its own, and the old one goes when nothing holds the old context.
    /// </summary>
    internal OpenSsl.OpenSslServer? TlsContexts => _tlsFrontEnd?.Tls;

    /// <summary>The certificate of the first app that would serve <paramref name="serverName"/> and has one.</summary>
    internal SslStreamCertificateContext? SelectCertificate(string? serverName)
    {
        var host = serverName is null ? null : NormalizeHost(serverName);
        foreach (var route in Routes.ForHost(host))
            if (route.App.Certificates?.TryGetCertificate(host) is { } certificate) return certificate;
        return null;
    }

    private Task DispatchAsync(HttpContext context)
    {
        var host = NormalizeHost(context.Request.Host.Host);
        var path = context.Request.Path.HasValue ? context.Request.Path.Value! : "/";
        // For every host, before any app's routes or redirect_http: the CA validates names no app may serve yet.
        if (_challenges is not null && _challenges.TryAnswer(path, out var keyAuthorization))
        {
            context.Response.ContentType = "text/plain";
            return context.Response.WriteAsync(keyAuthorization);
        }
        var route = Routes.Match(host, path);
        if (route is null)
        {
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            return context.Response.WriteAsync($"no app serves host '{host}' path '{path}' here\n");
        }
        return route.App.HandleAsync(context, _forwarder);
    }

    /// <summary>Lower case, no trailing dot (a fully qualified name is the same host).</summary>
    internal static string NormalizeHost(string host) => host.TrimEnd('.').ToLowerInvariant();

    /// <summary>How long <see cref="DisposeAsync"/> lets requests in flight finish (the host's default shutdown timeout).</summary>
    public static readonly TimeSpan DisposeDrain = TimeSpan.FromSeconds(30);

    /// <summary><see cref="StopAsync"/> with what is still running cut after <see cref="DisposeDrain"/>.</summary>
    public async ValueTask DisposeAsync()
    {
        using var drained = new CancellationTokenSource(DisposeDrain);
        await StopAsync(drained.Token);
    }

    /// <summary>
    /// Stops accepting, lets the requests in flight finish and closes idle keep-alive connections; what still runs when
    /// <paramref name="drained"/> fires (a WebSocket, a long poll) is cut then, however late that is. Then closes this
    /// listener's descriptor.
    /// </summary>
    public async ValueTask StopAsync(CancellationToken drained)
    {
        if (_webDisposed)
        {
            ListeningSocket.Dispose();
            return;
        }
        try
        {
            await StopServingAsync(drained);
        }
        finally
        {
            // Every connection of this listener is closed by now: its own loops can go.
            if (_ownsLoops) Loops.Dispose();
        }
    }

    private async ValueTask StopServingAsync(CancellationToken drained)
    {
        _webDisposed = true;
        // Stopping accepts nothing more, lets the requests in flight finish and closes idle keep-alive connections.
        if (Accepting)
            await Task.WhenAll(_web.StopAsync(drained), _tlsFrontEnd?.StopAsync(drained) ?? Task.CompletedTask, _plainFrontEnd?.StopAsync(drained) ?? Task.CompletedTask);
        await _web.DisposeAsync();
        // Closed here, once nothing accepts on it.
        ListeningSocket.Dispose();
    }
}
