using System.Diagnostics;
using System.Net;

namespace Cutover.Tests.Support;

/// <summary>One request: when it started and ended (ms since the load began), and what came back.</summary>
public readonly record struct Sample(double StartMs, double EndMs, int Status, string? Version, string? Error);

/// <summary>
/// Keeps <c>connections</c> keep-alive connections busy with back-to-back GETs until stopped or until its
/// hard limits (time and request count) run out. Every request is recorded, so failures are counted exactly.
/// </summary>
public sealed class LoadGenerator : IAsyncDisposable
{
    private readonly HttpClient _client;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Sample>[] _samples;
    private readonly Task[] _workers;

    /// <param name="host">The Host header to send instead of the URL's (apps routed by host on one address).</param>
    public LoadGenerator(string url, int connections, TimeSpan maxDuration, int maxRequestsPerConnection = 1_000_000, string? host = null)
    {
        Clock = Stopwatch.StartNew();
        _client = new HttpClient(new SocketsHttpHandler
        {
            MaxConnectionsPerServer = connections,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            UseProxy = false,
        }) { Timeout = TimeSpan.FromSeconds(10) };
        if (host is not null) _client.DefaultRequestHeaders.Host = host;
        _stop.CancelAfter(maxDuration);
        _samples = Enumerable.Range(0, connections).Select(_ => new List<Sample>()).ToArray();
        _workers = Enumerable.Range(0, connections).Select(i => Task.Run(() => WorkAsync(url, _samples[i], maxRequestsPerConnection))).ToArray();
    }

    public Stopwatch Clock { get; }
    public double NowMs => Clock.Elapsed.TotalMilliseconds;

    private async Task WorkAsync(string url, List<Sample> samples, int maxRequests)
    {
        for (var i = 0; i < maxRequests && !_stop.IsCancellationRequested; i++)
        {
            var start = NowMs;
            try
            {
                using var response = await _client.GetAsync(url, CancellationToken.None);
                var body = await response.Content.ReadAsStringAsync();
                samples.Add(new Sample(start, NowMs, (int)response.StatusCode, ParseVersion(body), response.StatusCode == HttpStatusCode.OK ? null : body));
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
            {
                samples.Add(new Sample(start, NowMs, 0, null, e.InnerException is { } inner ? $"{e.Message} ({inner.Message})" : e.Message));
            }
        }
    }

    /// <summary>"hello from 1.2.0 (release ...)" gives "1.2.0".</summary>
    private static string? ParseVersion(string body)
    {
        const string prefix = "hello from ";
        if (!body.StartsWith(prefix, StringComparison.Ordinal)) return null;
        var end = body.IndexOf(' ', prefix.Length);
        return end < 0 ? null : body[prefix.Length..end];
    }

    public async Task<IReadOnlyList<Sample>> StopAsync()
    {
        _stop.Cancel();
        await Task.WhenAll(_workers);
        return _samples.SelectMany(s => s).OrderBy(s => s.StartMs).ToList();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _client.Dispose();
    }
}
