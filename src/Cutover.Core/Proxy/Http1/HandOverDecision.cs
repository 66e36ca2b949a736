namespace Cutover.Proxy.Http1;

/// <summary>
/// The one place that says whether a complete, well-formed request head goes the fast way or to Kestrel's HTTP
/// pipeline (ProxyServer.HandleAsync + YARP), which does everything the fast path leaves out. Kept to cheap checks of
/// state read once: what Kestrel's path would answer or hold itself goes to it, so each behaviour lives in one place.
/// </summary>
internal static class HandOverDecision
{
    private const string AcmeChallengePrefix = "/.well-known/acme-challenge";

    /// <summary>Why <paramref name="app"/>'s request must go to Kestrel, or null to forward it here.</summary>
    /// <param name="plainWithChallenges">A plain listener that answers the agent's ACME http-01 challenges.</param>
    public static string? Check(RequestHead head, string path, ProxyServer? app, bool isTls, bool plainWithChallenges)
    {
        // Asked before routing, for every host, as Listener.DispatchAsync does.
        if (plainWithChallenges && path.StartsWith(AcmeChallengePrefix, StringComparison.Ordinal)) return "an ACME http-01 challenge";
        if (app is null) return "no route (the listener's 404)";
        var gate = app.Gate;
        if (gate.Maintenance is not null || gate.PausedUntil is not null) return "maintenance or pause";
        var settings = app.Settings;
        if (settings.Tls is { RedirectHttp: true } && !isTls) return "redirect_http";
        if (settings.MaxRequestHeaders < Config.ProxyConfig.HeaderLimitCeiling && head.HeaderBytes > settings.MaxRequestHeaders) return "headers above max_request_headers";
        if (settings.MaxRequestBody is { } maxBody && head.ContentLength > maxBody) return "body above max_request_body";
        // Kestrel counts a chunked body against the limit as it reads it (413); the fast path does not count.
        if (settings.MaxRequestBody is not null && head.Chunked) return "chunked body with max_request_body";
        return null;
    }
}
