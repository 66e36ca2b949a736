using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Cutover.Config;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Cutover.Proxy;

/// <summary>
/// One app's side of Cutover's proxy: the requests its routes receive on the shared listeners
/// (<see cref="ProxyListeners"/>) go through its limits (431, 413), its http-to-https redirect and YARP's forwarder
/// (IHttpForwarder) to one of its instances. Routing to instances is ours (<see cref="BackendPool"/>), so YARP's
/// config-apply, Unknown-health and panic defaults never come into play. A request that could not reach its instance
/// (it died a moment ago) is retried once on another instance when nothing of it was sent or it is idempotent
/// without a body. response_timeout answers 504 when the instance has not sent its headers in time.
/// </summary>
public sealed class ProxyServer : IAsyncDisposable
{
    private readonly ProxyListeners _listeners;
    private readonly HttpMessageInvoker _invoker;
    private readonly ForwardedHeaders _transformer;
    private readonly ILogger _logger;
    private ProxyConfig _settings;
    private ICertificateSource? _certificates;
    private long _failed;
    private long _served;
    private long _bodyTooLarge;
    private long _headersTooLarge;
    private long _timedOut;

    private ProxyServer(string app, ProxyConfig settings, ProxyListeners listeners, ILogger logger)
    {
        App = app;
        _settings = settings;
        _listeners = listeners;
        _logger = logger;
        _transformer = new ForwardedHeaders(this);
        _invoker = new HttpMessageInvoker(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = TimeSpan.FromSeconds(5),
            // Below Node's 5 s keep-alive, so the pool never reuses a connection the instance is closing.
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(4),
            ActivityHeadersPropagator = null,
        });
    }

    public string App { get; }
    public BackendPool Pool { get; } = new();
    /// <summary>Maintenance and pause: checked before a request picks an instance.</summary>
    public TrafficGate Gate { get; } = new();
    /// <summary>The app's health path (health.path), never held by a pause nor answered by the maintenance page.</summary>
    public string? HealthPath
    {
        get => Volatile.Read(ref _healthPath);
        set => Volatile.Write(ref _healthPath, value);
    }
    private string? _healthPath;
    /// <summary>The plain listener's bound address.</summary>
    public IPEndPoint Listen { get; private set; } = null!;
    /// <summary>The proxy section in force: swapped whole on a reconfigure, read once per request.</summary>
    public ProxyConfig Settings => Volatile.Read(ref _settings);
    /// <summary>The app's certificates, with proxy.tls.</summary>
    public ICertificateSource? Certificates => Volatile.Read(ref _certificates);
    /// <summary>Responses the proxy itself produced as errors (502, 503, 504) since it started.</summary>
    public long Failed => Interlocked.Read(ref _failed);
    public long Served => Interlocked.Read(ref _served);
    /// <summary>413s (max_request_body), 431s (max_request_headers) and 504s (response_timeout) since it started.</summary>
    public long BodyTooLarge => Interlocked.Read(ref _bodyTooLarge);
    public long HeadersTooLarge => Interlocked.Read(ref _headersTooLarge);
    public long TimedOut => Interlocked.Read(ref _timedOut);

    private ForwarderRequestConfig _requestConfig = RequestConfigWith(ProxyConfig.DefaultActivityTimeout);

    private static ForwarderRequestConfig RequestConfigWith(TimeSpan activityTimeout) => new()
    {
        // activity_timeout: idle time between reads, for bodies, streams and WebSockets alike, as on the fast path;
        // response_timeout is the deadline for headers.
        ActivityTimeout = activityTimeout,
        // Instances speak HTTP/1.1 on loopback; asking for it exactly skips YARP's HTTP/2 negotiation default.
        Version = HttpVersion.Version11,
        VersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    /// <summary>YARP's per-request settings for the activity_timeout in force, made again only when a reconfigure changed it.</summary>
    private ForwarderRequestConfig RequestConfig
    {
        get
        {
            var activityTimeout = Settings.ActivityTimeout;
            var config = Volatile.Read(ref _requestConfig);
            if (config.ActivityTimeout == activityTimeout) return config;
            config = RequestConfigWith(activityTimeout);
            Volatile.Write(ref _requestConfig, config);
            return config;
        }
    }

    /// <summary>The agent's per-request meters for this app (status code, duration, retries); null records nothing.</summary>
    public Metrics.ProxyRequestMetrics? Metrics
    {
        get => Volatile.Read(ref _metrics);
        set => Volatile.Write(ref _metrics, value);
    }
    private Metrics.ProxyRequestMetrics? _metrics;

    /// <summary>Where one line per request goes, when the app's logs.access_log is on; null (the default) writes nothing.</summary>
    public Logging.RotatingLogFile? AccessLog
    {
        get => Volatile.Read(ref _accessLog);
        set => Volatile.Write(ref _accessLog, value);
    }
    private Logging.RotatingLogFile? _accessLog;

    /// <summary>Routes the app on the listeners its config names (starting those not running yet); nothing is routed to an instance yet (503).</summary>
    public static async Task<ProxyServer> StartAsync(string app, ProxyConfig config, ProxyListeners listeners, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var logger = loggerFactory.CreateLogger<ProxyServer>();
        var server = new ProxyServer(app, config, listeners, logger);
        // The certificate first: a broken one is a clear error before any route changes.
        server._certificates = config.Tls is { } tls ? CertificateSources.For(app, tls, listeners.Acme, logger) : null;
        try
        {
            server.Listen = (await listeners.AddAsync(server, config, cancellationToken)).Bound;
        }
        catch
        {
            server._certificates?.Dispose();
            server._invoker.Dispose();
            throw;
        }
        return server;
    }

    /// <summary>
    /// The proxy of an app whose web process does not run on this host (fleet roles without web): no route on any
    /// listener, no certificate; its pool stays empty. Listen is the configured address, for status only.
    /// </summary>
    public static ProxyServer Unrouted(string app, ProxyConfig config, ProxyListeners listeners, ILoggerFactory loggerFactory) =>
        new(app, config, listeners, loggerFactory.CreateLogger<ProxyServer>()) { Listen = config.Listen, _routed = false };

    /// <summary>False for <see cref="Unrouted"/>: nothing on the listeners to move or take off.</summary>
    private bool _routed = true;

    /// <summary>
    /// A new proxy section for the routed app: hosts, prefix, addresses, limits and certificate change in place (other
    /// apps' listeners and connections untouched). Returns why not, and then nothing changed.
    /// </summary>
    public async Task<string?> ReconfigureAsync(ProxyConfig config, CancellationToken cancellationToken)
    {
        if (!_routed)
        {
            Volatile.Write(ref _settings, config);
            Listen = config.Listen;
            return null;
        }
        var current = Settings;
        var certificates = Certificates;
        var newCertificates = config.Tls is { } tls && (tls.CertFile != current.Tls?.CertFile || tls.KeyFile != current.Tls?.KeyFile || tls.Acme != current.Tls?.Acme);
        if (newCertificates)
        {
            try
            {
                certificates = CertificateSources.For(App, config.Tls!, _listeners.Acme, _logger);
            }
            catch (DeployException e)
            {
                return e.Message;
            }
        }
        if (await _listeners.RerouteAsync(this, config, cancellationToken) is { } refused)
        {
            if (newCertificates) certificates?.Dispose();
            return refused;
        }
        Volatile.Write(ref _settings, config);
        Listen = _listeners.PlainListenerOf(this).Bound;
        var previousCertificates = Interlocked.Exchange(ref _certificates, config.Tls is null ? null : certificates);
        if (!ReferenceEquals(previousCertificates, Certificates)) previousCertificates?.Dispose();
        return null;
    }

    /// <summary>A request a listener routed to this app.</summary>
    internal async Task HandleAsync(HttpContext context, IHttpForwarder forwarder)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await HandleUnloggedAsync(context, forwarder);
        }
        catch when (Metrics is { } failing)
        {
            // Counted as the client sees it: Kestrel answers a throw with 500 unless the response had started.
            failing.Record(context.Response.HasStarted ? context.Response.StatusCode : StatusCodes.Status500InternalServerError, started);
            throw;
        }
        Metrics?.Record(ResponseCode(context), started);
        if (AccessLog is null) return;
        var request = context.Request;
        LogAccess(context.Connection.RemoteIpAddress, request.Method, $"{request.Path}{request.QueryString}", request.Protocol, context.Response.StatusCode, started);
    }

    /// <summary>The access log line of one request, the same for both forwarding paths; nothing when access_log is off.</summary>
    internal void LogAccess(IPAddress? client, string method, string pathAndQuery, string protocol, int status, long started)
    {
        if (AccessLog is not { } accessLog) return;
        accessLog.Write(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {client} \"{method} {pathAndQuery} {protocol}\" {status} {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.0}ms\n"));
    }

    /// <summary>The fast path's side of the counters above (Http1/): a response relayed, a failure the proxy answered, a 504.</summary>
    internal void CountServed() => Interlocked.Increment(ref _served);
    internal void CountFailed() => Interlocked.Increment(ref _failed);
    internal void CountTimedOut() => Interlocked.Increment(ref _timedOut);

    /// <summary>
    /// The status the client got; 499 (nginx's "client closed request") when it left before any answer, since the
    /// status code then still says 200 though nothing was sent.
    /// </summary>
    private static int ResponseCode(HttpContext context) =>
        !context.Response.HasStarted && context.RequestAborted.IsCancellationRequested ? 499 : context.Response.StatusCode;

    private async Task HandleUnloggedAsync(HttpContext context, IHttpForwarder forwarder)
    {
        var settings = Settings;
        var request = context.Request;
        if (RequestFraming.Refusal(request) is { } refused)
        {
            // Connection: close makes Kestrel close after the answer: what follows the head is never read as a request.
            context.Response.StatusCode = refused.Status;
            context.Response.Headers.Connection = "close";
            await context.Response.WriteAsync(refused.Reason);
            return;
        }
        if (settings.MaxRequestHeaders < ProxyConfig.HeaderLimitCeiling && HeaderBytes(request) > settings.MaxRequestHeaders)
        {
            Interlocked.Increment(ref _headersTooLarge);
            await AnswerAsync(context, StatusCodes.Status431RequestHeaderFieldsTooLarge, $"request headers larger than {settings.MaxRequestHeaders} bytes\n");
            return;
        }
        if (settings.Tls is { RedirectHttp: true } tls && !request.IsHttps && !IsAcmeChallenge(request)
            && ForwardedHeaders.ClientScheme(context, ForwardedHeaders.IsTrusted(context.Connection.RemoteIpAddress, settings.TrustedProxies)) != "https")
        {
            var authority = tls.Listen.Port == 443 ? request.Host.Host : $"{request.Host.Host}:{tls.Listen.Port}";
            context.Response.StatusCode = HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method)
                ? StatusCodes.Status301MovedPermanently : StatusCodes.Status308PermanentRedirect;
            context.Response.Headers.Location = $"https://{authority}{request.PathBase}{request.Path}{request.QueryString}";
            return;
        }
        if (settings.MaxRequestBody is { } maxBody)
        {
            if (request.ContentLength > maxBody)
            {
                Interlocked.Increment(ref _bodyTooLarge);
                await AnswerAsync(context, StatusCodes.Status413PayloadTooLarge, $"request body larger than {maxBody} bytes\n");
                return;
            }
            // A chunked body is counted as it is read: Kestrel fails the read past the limit, answered 413 below.
            if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = maxBody;
        }
        if (!TrafficGate.IsExempt(request, HealthPath) && !await PassGateAsync(context)) return;
        using var deadline = new ResponseDeadline(settings.ResponseTimeout);
        context.Features.Set(deadline);
        await ForwardAsync(context, forwarder, deadline);
    }

    /// <summary>
    /// Maintenance answers 503 with its page; a pause holds the request (not counted by any instance) until resume,
    /// or answers 503 at the pause's deadline or when too many are held. False when the request was answered here.
    /// </summary>
    private async ValueTask<bool> PassGateAsync(HttpContext context)
    {
        if (Gate.Maintenance is null && Gate.PausedUntil is null) return true;
        if (Gate.Maintenance is { } page)
        {
            await AnswerUnavailableAsync(context, page.Body, page.ContentType, retryAfterSeconds: 30);
            return false;
        }
        GateOutcome outcome;
        try
        {
            outcome = await Gate.WaitAsync(context.RequestAborted);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            return false; // the client left while held: nobody to answer
        }
        if (outcome == GateOutcome.Pass)
        {
            // Maintenance turned on while it was held wins over the resume.
            if (Gate.Maintenance is not { } later) return true;
            await AnswerUnavailableAsync(context, later.Body, later.ContentType, retryAfterSeconds: 30);
            return false;
        }
        Interlocked.Increment(ref _failed);
        await AnswerUnavailableAsync(context, outcome == GateOutcome.Full
            ? $"paused, and {Gate.MaxHeld} requests are already held\n"
            : "paused, and the pause ran out before it was resumed\n", "text/plain; charset=utf-8", retryAfterSeconds: 5);
        return false;
    }

    private static async Task AnswerUnavailableAsync(HttpContext context, string body, string contentType, int retryAfterSeconds)
    {
        if (context.Response.HasStarted) return;
        context.Response.Clear();
        context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        context.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.ContentType = contentType;
        await context.Response.WriteAsync(body);
    }

    /// <summary>The bytes of the header lines as Kestrel counts them for its own limit (name, ": ", value, CRLF).</summary>
    private static long HeaderBytes(HttpRequest request)
    {
        long total = 0;
        foreach (var (name, values) in request.Headers)
            foreach (var value in values)
                total += name.Length + (value?.Length ?? 0) + 4;
        return total;
    }

    /// <summary>ACME http-01 answers must stay reachable over plain HTTP, whatever redirect_http says.</summary>
    private static bool IsAcmeChallenge(HttpRequest request) => request.Path.StartsWithSegments("/.well-known/acme-challenge");

    private static async Task AnswerAsync(HttpContext context, int status, string body)
    {
        if (context.Response.HasStarted) return;
        context.Response.Clear();
        context.Response.StatusCode = status;
        await context.Response.WriteAsync(body);
    }

    private async Task ForwardAsync(HttpContext context, IHttpForwarder forwarder, ResponseDeadline deadline)
    {
        Backend? first = null;
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var backend = Pool.Pick(exclude: first);
            if (backend is null || backend == first)
            {
                if (!context.Response.HasStarted)
                {
                    context.Response.Clear();
                    context.Response.StatusCode = StatusCodes.Status503ServiceUnavailable;
                    context.Response.Headers.RetryAfter = ForwardingRules.NoReadyInstanceRetryAfter;
                    await context.Response.WriteAsync(ForwardingRules.NoReadyInstance);
                }
                Interlocked.Increment(ref _failed);
                return;
            }
            backend.Enter();
            ForwarderError error;
            try
            {
                if (IsUpgrade(context.Request))
                {
                    // Only upgraded connections (WebSockets) outlive a drain; the backend's token closes them at drain_timeout.
                    using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, backend.Closing);
                    error = await forwarder.SendAsync(context, backend.Prefix, _invoker, RequestConfig, _transformer, linked.Token);
                }
                else
                {
                    error = await forwarder.SendAsync(context, backend.Prefix, _invoker, RequestConfig, _transformer, deadline.Token);
                }
            }
            finally
            {
                backend.Leave();
            }
            if (error == ForwarderError.None)
            {
                Interlocked.Increment(ref _served);
                backend.Count(error: context.Response.StatusCode >= 500);
                return;
            }
            if (deadline.Expired || error == ForwarderError.RequestTimedOut)
            {
                // The app did not answer in time: 504, never retried (it may still be working on it).
                Interlocked.Increment(ref _timedOut);
                Interlocked.Increment(ref _failed);
                backend.Count(error: true);
                await AnswerAsync(context, StatusCodes.Status504GatewayTimeout, ForwardingRules.TimedOut(Settings.ResponseTimeout));
                return;
            }
            if (IsBodyTooLarge(context.Features.Get<IForwarderErrorFeature>()?.Exception))
            {
                Interlocked.Increment(ref _bodyTooLarge);
                await AnswerAsync(context, StatusCodes.Status413PayloadTooLarge, $"request body larger than {Settings.MaxRequestBody} bytes\n");
                return;
            }
            if (error is not (ForwarderError.RequestCanceled or ForwarderError.ResponseBodyCanceled or ForwarderError.UpgradeRequestCanceled))
                backend.Count(error: true);
            if (attempt == 0 && Retriable(context, error))
            {
                first = backend;
                Metrics?.Retried();
                context.Features.Set<IForwarderErrorFeature>(null);
                context.Response.Clear();
                continue;
            }
            if (error is not (ForwarderError.RequestCanceled or ForwarderError.ResponseBodyCanceled or ForwarderError.UpgradeRequestCanceled))
                Interlocked.Increment(ref _failed);
            return;
        }
    }

    /// <summary>Kestrel's refusal of a (chunked) body past max_request_body, however deep YARP wrapped it.</summary>
    private static bool IsBodyTooLarge(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
            if (e is Microsoft.AspNetCore.Http.BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge }) return true;
        return false;
    }

    private static bool IsUpgrade(HttpRequest request) =>
        request.Headers.ContainsKey("Upgrade") || HttpMethods.IsConnect(request.Method);

    private static bool Retriable(HttpContext context, ForwarderError error)
    {
        if (context.Response.HasStarted || error != ForwarderError.Request) return false;
        var exception = context.Features.Get<IForwarderErrorFeature>()?.Exception;
        var refused = exception is HttpRequestException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.ConnectionReset } }
                      || exception is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError };
        var hasBody = context.Request.ContentLength is not (null or 0) || context.Request.Headers.ContainsKey("Transfer-Encoding");
        return ForwardingRules.MayRetry(nothingSent: refused, context.Request.Method, hasBody);
    }

    /// <summary>
    /// Takes a backend out of rotation and waits for its in-flight requests, up to <paramref name="timeout"/>;
    /// then closes whatever is left open (WebSockets). Returns how many were still open at the end.
    /// </summary>
    public async Task<int> DrainAsync(Backend backend, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Pool.Remove(backend);
        var clock = Stopwatch.StartNew();
        while (backend.InFlight > 0 && clock.Elapsed < timeout)
            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken);
        var left = backend.InFlight;
        backend.CloseRemaining();
        return left;
    }

    /// <summary>Takes the app's routes off the listeners (a listener no other app uses stops).</summary>
    public async ValueTask DisposeAsync()
    {
        Gate.Dispose(); // held requests get their 503 before the routes go
        if (_routed) await _listeners.RemoveAsync(this);
        _invoker.Dispose();
        Certificates?.Dispose();
    }
}
