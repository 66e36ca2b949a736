using System.Diagnostics;
using System.Text;
using System.Threading.Channels;

namespace Cutover.Probe;

public sealed record ProbeOptions
{
    public required Uri Url { get; init; }
    public double Rate { get; init; } = 100;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    public int Connections { get; init; } = 16;
    public string Method { get; init; } = "GET";
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);
}

public sealed record LatencySummary(double P50, double P90, double P99, double Max);

/// <summary>The one-second window with the most failures (or, when nothing failed, the slowest p99).</summary>
public sealed record WorstWindow(int Second, long Requests, long Failed, double P99Ms);

/// <summary>
/// The requests scheduled within one <see cref="Width"/> slice of the probe, from <paramref name="StartMs"/> after its
/// start: how many, how many failed, and their latency (null when the slice had no request, at rates below 10/s).
/// <paramref name="WidthMs"/> is the slice's length: <see cref="Width"/>, except for the last when the probe stopped within it.
/// </summary>
public sealed record ProbeBucket(double StartMs, double WidthMs, long Requests, long Failed, double? P50Ms, double? P99Ms)
{
    public static readonly TimeSpan Width = TimeSpan.FromMilliseconds(100);

    public double RequestsPerSecond => Requests * 1000 / WidthMs;

    public double FailedPerSecond => Failed * 1000 / WidthMs;
}

/// <param name="Buckets">Every slice from the start to the last request, empty ones included, so they add up to <paramref name="Requests"/>.</param>
/// <param name="StartTimestamp">The probe's time zero as a <see cref="Stopwatch"/> timestamp, so events timed by the same clock line up with the buckets.</param>
public sealed record ProbeReport(
    long Requests,
    long Failed,
    IReadOnlyDictionary<string, long> Failures,
    LatencySummary LatencyMs,
    WorstWindow? WorstWindow,
    double Seconds,
    IReadOnlyList<ProbeBucket> Buckets,
    long StartTimestamp);

/// <summary>
/// `cutover probe`: requests at a fixed rate (open loop), so a stall shows as latency instead of hiding as
/// fewer requests. Latency is measured from each request's scheduled time. Every request is counted; a
/// failure is a refused or reset connection, a timeout, a status >= 500, or another non-2xx/3xx status.
/// </summary>
public static class LoadProbe
{
    private readonly record struct Result(double ScheduledMs, double LatencyMs, ProbeOutcome Outcome);

    public static async Task<ProbeReport> RunAsync(ProbeOptions options, CancellationToken stopEarly)
    {
        var request = Encoding.ASCII.GetBytes(
            $"{options.Method} {options.Url.PathAndQuery} HTTP/1.1\r\nHost: {options.Url.Authority}\r\nUser-Agent: cutover-probe\r\nAccept: */*\r\n\r\n");
        var pool = Channel.CreateBounded<ProbeConnection>(options.Connections);
        for (var i = 0; i < options.Connections; i++)
            pool.Writer.TryWrite(new ProbeConnection(options.Url.Host, options.Url.Port));

        var total = (long)Math.Ceiling(options.Rate * options.Duration.TotalSeconds);
        var results = new Result[total];
        var running = new List<Task>();
        var startTimestamp = Stopwatch.GetTimestamp();
        var clock = Stopwatch.StartNew();
        long sent = 0;
        while (sent < total && !stopEarly.IsCancellationRequested)
        {
            var scheduledMs = sent * 1000.0 / options.Rate;
            var wait = scheduledMs - clock.Elapsed.TotalMilliseconds;
            if (wait > 1)
            {
                try { await Task.Delay(TimeSpan.FromMilliseconds(wait), stopEarly); }
                catch (OperationCanceledException) { break; }
            }
            var index = sent++;
            running.Add(Task.Run(async () =>
            {
                var connection = await pool.Reader.ReadAsync();
                using var timeout = new CancellationTokenSource(options.Timeout);
                var (outcome, _) = await connection.SendAsync(request, timeout.Token);
                results[index] = new Result(scheduledMs, clock.Elapsed.TotalMilliseconds - scheduledMs, outcome);
                pool.Writer.TryWrite(connection);
            }));
        }
        await Task.WhenAll(running);
        while (pool.Reader.TryRead(out var connection)) connection.Dispose();
        // Sending covered the schedule up to the slot of the request that would have come next.
        return Summarize(results.AsSpan(0, (int)sent).ToArray(), clock.Elapsed.TotalSeconds, sent * 1000.0 / options.Rate, startTimestamp);
    }

    private static ProbeReport Summarize(Result[] results, double seconds, double scheduleEndMs, long startTimestamp)
    {
        static string Kind(ProbeOutcome o) => o switch
        {
            ProbeOutcome.Refused => "refused",
            ProbeOutcome.Reset => "reset",
            ProbeOutcome.Timeout => "timeout",
            ProbeOutcome.Status5xx => "status_5xx",
            _ => "other_status",
        };
        var failures = new[] { "refused", "reset", "timeout", "status_5xx", "other_status" }.ToDictionary(k => k, _ => 0L);
        foreach (var r in results.Where(r => r.Outcome != ProbeOutcome.Ok)) failures[Kind(r.Outcome)]++;
        var latencies = results.Select(r => r.LatencyMs).Order().ToArray();
        double Percentile(double[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(p * sorted.Length) - 1)];
        var windows = results.GroupBy(r => (int)(r.ScheduledMs / 1000)).Select(g =>
        {
            var sorted = g.Select(r => r.LatencyMs).Order().ToArray();
            return new WorstWindow(g.Key, g.LongCount(), g.LongCount(r => r.Outcome != ProbeOutcome.Ok), Math.Round(Percentile(sorted, 0.99), 2));
        }).ToList();
        var worst = windows.OrderByDescending(w => w.Failed).ThenByDescending(w => w.P99Ms).FirstOrDefault();
        var width = ProbeBucket.Width.TotalMilliseconds;
        var slices = results.ToLookup(r => (int)(r.ScheduledMs / width));
        var buckets = Enumerable.Range(0, results.Length == 0 ? 0 : slices.Max(g => g.Key) + 1).Select(i =>
        {
            var sorted = slices[i].Select(r => r.LatencyMs).Order().ToArray();
            return new ProbeBucket(i * width, Math.Clamp(scheduleEndMs - i * width, 1, width), sorted.Length, slices[i].LongCount(r => r.Outcome != ProbeOutcome.Ok),
                sorted.Length == 0 ? null : Math.Round(Percentile(sorted, 0.50), 2), sorted.Length == 0 ? null : Math.Round(Percentile(sorted, 0.99), 2));
        }).ToList();
        return new ProbeReport(
            results.Length,
            results.LongCount(r => r.Outcome != ProbeOutcome.Ok),
            failures,
            new LatencySummary(Math.Round(Percentile(latencies, 0.50), 2), Math.Round(Percentile(latencies, 0.90), 2),
                Math.Round(Percentile(latencies, 0.99), 2), Math.Round(latencies.LastOrDefault(), 2)),
            worst,
            Math.Round(seconds, 3),
            buckets,
            startTimestamp);
    }
}
