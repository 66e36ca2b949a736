using System.Net;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Cutover.Proxy;

/// <summary>
/// What the app is told about the client, per request (YARP's HttpTransformer.Default would set X-Forwarded-* from
/// scratch and put the instance's address in Host, so neither a load balancer's client address nor the original Host
/// would reach the app):
/// <list type="bullet">
/// <item>Host: the client's, unchanged.</item>
/// <item>X-Forwarded-For: a trusted peer's list with the peer appended; from anyone else, the peer alone (a client
/// cannot choose the address the app sees).</item>
/// <item>X-Forwarded-Proto: https when TLS ended here; a trusted peer's value when it sent one; else http.</item>
/// <item>X-Forwarded-Host: a trusted peer's value when it sent one; else the Host.</item>
/// <item>Forwarded (RFC 7239) and X-Forwarded-Prefix pass only from trusted peers.</item>
/// </list>
/// Response side: Strict-Transport-Security on TLS responses with hsts, and the response deadline disarmed once the
/// app's headers are in (streams and WebSockets may then run as long as they like).
/// </summary>
public sealed class ForwardedHeaders(ProxyServer app) : HttpTransformer
{
    public const string Hsts = "max-age=31536000";

    /// <summary>Whether the connection's peer may speak for the client.</summary>
    public static bool IsTrusted(IPAddress? peer, IReadOnlyList<IPNetwork> trusted)
    {
        if (peer is null || trusted.Count == 0) return false;
        if (peer.IsIPv4MappedToIPv6) peer = peer.MapToIPv4();
        foreach (var network in trusted)
            if (network.Contains(peer)) return true;
        return false;
    }

    /// <summary>The scheme the client used end to end: https when TLS ended here, or a trusted peer says so.</summary>
    public static string ClientScheme(HttpContext context, bool trusted)
    {
        if (context.Request.IsHttps) return "https";
        // Only the two words an app may build URLs with: anything else from a trusted peer is its mistake, not a scheme.
        return (trusted ? TrustedScheme(LastValue(context.Request.Headers["X-Forwarded-Proto"])) : null) ?? "http";
    }

    /// <summary>A trusted peer's X-Forwarded-Proto (its last value) as a scheme, or null when it is not one.</summary>
    internal static string? TrustedScheme(ReadOnlySpan<char> proto) =>
        proto.Equals("https", StringComparison.OrdinalIgnoreCase) ? "https"
        : proto.Equals("http", StringComparison.OrdinalIgnoreCase) ? "http"
        : null;

    /// <summary>X-Forwarded-For as the app sees it: a trusted peer's list with the peer appended, else the peer alone.</summary>
    internal static string ForwardedFor(string trustedIncoming, string peer) => trustedIncoming.Length > 0 ? $"{trustedIncoming}, {peer}" : peer;

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken);
        var request = httpContext.Request;
        var headers = proxyRequest.Headers;
        var peer = httpContext.Connection.RemoteIpAddress;
        if (peer is { IsIPv4MappedToIPv6: true }) peer = peer.MapToIPv4();
        var trusted = IsTrusted(peer, app.Settings.TrustedProxies);

        headers.Host = request.Host.HasValue ? request.Host.Value : null;

        var peerText = peer?.ToString() ?? "";
        var incomingFor = trusted ? string.Join(", ", request.Headers["X-Forwarded-For"].Where(v => !string.IsNullOrWhiteSpace(v))) : "";
        headers.Remove("X-Forwarded-For");
        headers.TryAddWithoutValidation("X-Forwarded-For", ForwardedFor(incomingFor, peerText));

        headers.Remove("X-Forwarded-Proto");
        headers.TryAddWithoutValidation("X-Forwarded-Proto", ClientScheme(httpContext, trusted));

        var incomingHost = trusted ? LastValue(request.Headers["X-Forwarded-Host"]) : null;
        headers.Remove("X-Forwarded-Host");
        if (incomingHost is { Length: > 0 }) headers.TryAddWithoutValidation("X-Forwarded-Host", incomingHost);
        else if (request.Host.HasValue) headers.TryAddWithoutValidation("X-Forwarded-Host", request.Host.Value);

        if (!trusted)
        {
            headers.Remove("Forwarded");
            headers.Remove("X-Forwarded-Prefix");
        }
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        // The app answered (headers are in): from here on only the client and drain_timeout end the exchange.
        httpContext.Features.Get<ResponseDeadline>()?.Disarm();
        var copy = await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken);
        if (httpContext.Request.IsHttps && app.Settings.Tls is { Hsts: true })
            httpContext.Response.Headers.StrictTransportSecurity = Hsts;
        return copy;
    }

    /// <summary>The right-most value (the nearest hop's), of a header that may come as a list.</summary>
    private static string? LastValue(Microsoft.Extensions.Primitives.StringValues values)
    {
        var last = values.LastOrDefault(v => !string.IsNullOrWhiteSpace(v));
        if (last is null) return null;
        var comma = last.LastIndexOf(',');
        return (comma >= 0 ? last[(comma + 1)..] : last).Trim();
    }
}

/// <summary>
/// response_timeout for one request: cancels the forward when the app has not sent its headers in time, and
/// remembers that it did, so the proxy answers 504 (not YARP's 502 for a cancelled request).
/// </summary>
public sealed class ResponseDeadline : IDisposable
{
    private readonly CancellationTokenSource _timer;
    private int _disarmed;

    public ResponseDeadline(TimeSpan timeout)
    {
        _timer = new CancellationTokenSource(timeout);
    }

    public CancellationToken Token => _timer.Token;

    /// <summary>True when the app did not answer within the timeout.</summary>
    public bool Expired => _timer.IsCancellationRequested && Volatile.Read(ref _disarmed) == 0;

    public void Disarm()
    {
        _timer.CancelAfter(Timeout.InfiniteTimeSpan);
        // Too late when it already fired: then the request did time out.
        if (!_timer.IsCancellationRequested) Volatile.Write(ref _disarmed, 1);
    }

    public void Dispose() => _timer.Dispose();
}
