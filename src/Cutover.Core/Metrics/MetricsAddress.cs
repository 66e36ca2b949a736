using System.Net;

namespace Cutover.Metrics;

/// <summary>
/// Where the agent serves /metrics: `cutover agent --metrics-listen ADDR`, else CUTOVER_METRICS_LISTEN, else
/// 127.0.0.1:9464 (loopback: the numbers say what runs on the host, so exposing them is a choice). "off": nowhere
/// (the control socket's /v1/metrics still answers).
/// </summary>
public static class MetricsAddress
{
    public const string Variable = "CUTOVER_METRICS_LISTEN";
    public const string Default = "127.0.0.1:9464";
    public const string Off = "off";

    /// <summary>The address to bind, null for "off"; a bad value throws InputException naming where it came from (exit 2).</summary>
    public static IPEndPoint? Resolve(string? option, Func<string, string?> environment)
    {
        var (text, source) = option is not null ? (option, "--metrics-listen")
            : environment(Variable) is { Length: > 0 } fromEnvironment ? (fromEnvironment, Variable)
            : (Default, "the default");
        if (text.Trim().Equals(Off, StringComparison.OrdinalIgnoreCase)) return null;
        if (!Config.ConfigLoader.TryParseListen(text.Trim(), out var endpoint))
            throw new InputException($"{source}: '{text}' is not an address to listen on; give HOST:PORT (e.g. {Default}, 0.0.0.0:9464, [::1]:9464) or {Off}");
        return endpoint;
    }
}
