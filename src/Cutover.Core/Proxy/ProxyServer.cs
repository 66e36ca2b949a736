using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Cutover.Proxy;

/// <summary>
/// Cutover's proxy: Kestrel in front, YARP's forwarder (IHttpForwarder) to the instances. Routing is ours
/// (<see cref="BackendPool"/>), so YARP's config-apply, Unknown-health and panic defaults never come into play.
/// A request that could not reach its instance (it died a moment ago) is retried once on another instance
/// when nothing of it was sent or it is idempotent without a body.
/// </summary>
public sealed class ProxyServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private long _failed;
    private long _served;

    private ProxyServer(WebApplication app, BackendPool pool)
    {
        _app = app;
        Pool = pool;
    }

    public BackendPool Pool { get; }
    public IPEndPoint Listen { get; private set; } = null!;
    /// <summary>Responses the proxy itself produced as errors (502, 503, 504) since it started.</summary>
    public long Failed => Interlocked.Read(ref _failed);
    public long Served => Interlocked.Read(ref _served);

    /// <summary>Where one line per request goes, when the app's logs.access_log is on; null (the default) writes nothing.</summary>
    public Logging.RotatingLogFile? AccessLog
    {
        get => Volatile.Read(ref _accessLog);
        set => Volatile.Write(ref _accessLog, value);
    }
    private Logging.RotatingLogFile? _accessLog;

    public static async Task<ProxyServer> StartAsync(IPEndPoint listen, BackendPool pool, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddHttpForwarder();
        // Forwarding never blocks, so it runs on the thread that read the request instead of being queued (with the
        // agent's inline socket completions, the epoll thread): about a fifth less CPU per request, see bench/README.md.
        builder.WebHost.UseSockets(o => o.UnsafePreferInlineScheduling = true);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(listen);
            k.AddServerHeader = false;
            k.Limits.MaxRequestBodySize = null;
        });
        var app = builder.Build();
        var server = new ProxyServer(app, pool);
        var invoker = new HttpMessageInvoker(new SocketsHttpHandler
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
        var forwarder = app.Services.GetRequiredService<IHttpForwarder>();
        // Instances speak HTTP/1.1 on loopback; asking for it exactly skips YARP's HTTP/2 negotiation default.
        var requestConfig = new ForwarderRequestConfig
        {
            ActivityTimeout = TimeSpan.FromMinutes(10),
            Version = HttpVersion.Version11,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        app.Run(context => server.AccessLog is { } accessLog
            ? server.ForwardLoggedAsync(context, forwarder, invoker, requestConfig, accessLog)
            : server.ForwardAsync(context, forwarder, invoker, requestConfig));
        try
        {
            await app.StartAsync(cancellationToken);
        }
        catch (IOException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.AddressAlreadyInUse } || e.Message.Contains("address already in use", StringComparison.OrdinalIgnoreCase))
        {
            await app.DisposeAsync();
            throw new DeployException($"the proxy cannot listen on {listen}: the address is already in use by another process");
        }
        server.Listen = listen.Port != 0 ? listen : ResolveBound(app, listen);
        return server;
    }

    private static IPEndPoint ResolveBound(WebApplication app, IPEndPoint listen)
    {
        var address = app.Urls.FirstOrDefault();
        return address is null ? listen : new IPEndPoint(listen.Address, new Uri(address.Replace("[::]", "localhost")).Port);
    }

    private async Task ForwardAsync(HttpContext context, IHttpForwarder forwarder, HttpMessageInvoker invoker, ForwarderRequestConfig config)
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
                    context.Response.Headers.RetryAfter = "1";
                    await context.Response.WriteAsync("no ready instance\n");
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
                    using var linked = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, backend.Closing);
                    error = await forwarder.SendAsync(context, backend.Prefix, invoker, config, HttpTransformer.Default, linked.Token);
                }
                else
                {
                    error = await forwarder.SendAsync(context, backend.Prefix, invoker, config, HttpTransformer.Default);
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
            if (error is not (ForwarderError.RequestCanceled or ForwarderError.ResponseBodyCanceled or ForwarderError.UpgradeRequestCanceled))
                backend.Count(error: true);
            if (attempt == 0 && Retriable(context, error))
            {
                first = backend;
                context.Features.Set<IForwarderErrorFeature>(null);
                context.Response.Clear();
                continue;
            }
            if (error is not (ForwarderError.RequestCanceled or ForwarderError.ResponseBodyCanceled or ForwarderError.UpgradeRequestCanceled))
                Interlocked.Increment(ref _failed);
            return;
        }
    }

    /// <summary>Forwards, then writes the access log line: time, client, request line, status, duration.</summary>
    private async Task ForwardLoggedAsync(HttpContext context, IHttpForwarder forwarder, HttpMessageInvoker invoker, ForwarderRequestConfig config, Logging.RotatingLogFile accessLog)
    {
        var started = Stopwatch.GetTimestamp();
        await ForwardAsync(context, forwarder, invoker, config);
        var request = context.Request;
        accessLog.Write(string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {context.Connection.RemoteIpAddress} \"{request.Method} {request.Path}{request.QueryString} {request.Protocol}\" {context.Response.StatusCode} {Stopwatch.GetElapsedTime(started).TotalMilliseconds:0.0}ms\n"));
    }

    private static bool IsUpgrade(HttpRequest request) =>
        request.Headers.ContainsKey("Upgrade") || HttpMethods.IsConnect(request.Method);

    private static bool Retriable(HttpContext context, ForwarderError error)
    {
        if (context.Response.HasStarted || error != ForwarderError.Request) return false;
        var exception = context.Features.Get<IForwarderErrorFeature>()?.Exception;
        var refused = exception is HttpRequestException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionRefused or SocketError.ConnectionReset } }
                      || exception is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError };
        var idempotent = HttpMethods.IsGet(context.Request.Method) || HttpMethods.IsHead(context.Request.Method)
                         || HttpMethods.IsOptions(context.Request.Method) || HttpMethods.IsTrace(context.Request.Method)
                         || HttpMethods.IsPut(context.Request.Method) || HttpMethods.IsDelete(context.Request.Method);
        var noBody = context.Request.ContentLength is null or 0 && !context.Request.Headers.ContainsKey("Transfer-Encoding");
        return refused || (idempotent && noBody);
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

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(CancellationToken.None);
        await _app.DisposeAsync();
    }
}
