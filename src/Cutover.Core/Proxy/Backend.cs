namespace Cutover.Proxy;

/// <summary>
/// A ready instance behind the proxy. It counts its in-flight requests (drain waits for zero) and owns the
/// token that closes its upgraded connections (WebSockets) when the drain timeout runs out; ordinary requests
/// still running then end with the instance itself (stop_signal, then SIGKILL after kill_timeout).
/// </summary>
public sealed class Backend(string id, System.Net.IPEndPoint endpoint)
{
    private readonly CancellationTokenSource _closeUpgraded = new();
    private int _inFlight;
    private long _responses;
    private long _errors;

    public string Id { get; } = id;
    public System.Net.IPEndPoint Endpoint { get; } = endpoint;
    public string Prefix { get; } = $"http://{endpoint}/";
    public int InFlight => Volatile.Read(ref _inFlight);
    public CancellationToken Closing => _closeUpgraded.Token;
    /// <summary>The fast path's idle HTTP/1.1 connections to this instance (Kestrel's path uses SocketsHttpHandler's pool).</summary>
    internal Http1.UpstreamPool Upstream { get; } = new(endpoint);

    /// <summary>Responses forwarded from this instance, and how many were status >= 500 or failed connections.</summary>
    public long Responses => Interlocked.Read(ref _responses);
    public long Errors => Interlocked.Read(ref _errors);

    internal void Count(bool error)
    {
        Interlocked.Increment(ref _responses);
        if (error) Interlocked.Increment(ref _errors);
    }

    internal void Enter() => Interlocked.Increment(ref _inFlight);
    internal void Leave() => Interlocked.Decrement(ref _inFlight);

    /// <summary>Closes what is still open: long requests and upgraded connections past the drain timeout.</summary>
    public void CloseRemaining()
    {
        _closeUpgraded.Cancel();
        // Idle only: the pool stays usable should the instance be routed to again (a blue-green switch back).
        Upstream.CloseIdle();
    }
}
