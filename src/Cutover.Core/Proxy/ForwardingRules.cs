namespace Cutover.Proxy;

/// <summary>
/// What both forwarding paths (Kestrel + YARP in <see cref="ProxyServer"/>, and the HTTP/1.1 fast path in Http1/)
/// decide and say the same way: the one retry, and the texts of the proxy's own answers.
/// </summary>
internal static class ForwardingRules
{
    public const string NoReadyInstance = "no ready instance\n";
    public const string NoReadyInstanceRetryAfter = "1";

    public static string TimedOut(TimeSpan responseTimeout) => $"the app did not answer within {Config.Duration.Format(responseTimeout)}\n";

    /// <summary>
    /// A request that failed before any answer is tried once more, on another instance, when nothing of it reached
    /// the first one (the connection was refused or reset), or when sending it twice is harmless: an idempotent method
    /// without a body.
    /// </summary>
    public static bool MayRetry(bool nothingSent, string method, bool hasBody) => nothingSent || (IsIdempotent(method) && !hasBody);

    public static bool IsIdempotent(string method) =>
        method.Equals("GET", StringComparison.OrdinalIgnoreCase) || method.Equals("HEAD", StringComparison.OrdinalIgnoreCase)
        || method.Equals("OPTIONS", StringComparison.OrdinalIgnoreCase) || method.Equals("TRACE", StringComparison.OrdinalIgnoreCase)
        || method.Equals("PUT", StringComparison.OrdinalIgnoreCase) || method.Equals("DELETE", StringComparison.OrdinalIgnoreCase);
}
