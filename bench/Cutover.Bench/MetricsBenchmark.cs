using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Cutover.Bench;

/// <summary>
/// Issue 15: what the agent's Prometheus metrics cost the proxy (the goal: under 3% of its requests/s), and the library
/// choice behind them. `metrics [ROUNDS]`:
/// <list type="number">
/// <item>The proxy with metrics on and off in one run, as users run it: two agents, each started by `cutover deploy` of the
/// same nginx backend app, one with CUTOVER_METRICS_LISTEN=off and one serving /metrics (scraped every second, 15× more
/// often than Prometheus' default, meanwhile); wrk rounds alternate between them; medians of requests/s and of the
/// agent's CPU per request.</item>
/// <item>The per-request recording alone, in this process, for the two libraries the issue allows: prometheus-net as
/// the agent uses it (series resolved ahead) and System.Diagnostics.Metrics instruments with tags under an OpenTelemetry
/// MeterProvider with its Prometheus exporter; two threads recording at once, as the proxy's two socket threads do.</item>
/// </list>
/// </summary>
public static class MetricsBenchmark
{
    private const string WrkArgs = "-t2 -c32 -d5s --latency";

    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = args is [var r, ..] && int.TryParse(r, out var parsed) ? parsed : 5;
        var repo = Directory.GetCurrentDirectory();
        var library = RecordingCost();
        var proxy = await ProxyCostAsync(rounds);
        var report = new StringBuilder();
        report.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores, load average {File.ReadAllText("/proc/loadavg").Split(' ')[0]} before the run. Command: `bench/run.sh` (or `dotnet bench/Cutover.Bench/bin/Release/net10.0/Cutover.Bench.dll metrics {rounds}`).");
        report.AppendLine();
        report.Append(proxy);
        report.AppendLine();
        report.Append(library);
        Console.WriteLine(report);
        StagingBenchmark.UpdateReadme(Path.Combine(repo, "bench", "README.md"), "metrics", report.ToString());
        return 0;
    }

    private sealed record Round(double Rps, double P99Ms, double CpuUsPerRequest, long Errors);

    private static async Task<string> ProxyCostAsync(int rounds)
    {
        using var offWork = new ProxyBenchmark.TempWork();
        using var onWork = new ProxyBenchmark.TempWork();
        var offPort = Cutover.Platform.LoopbackPort.Free();
        var onPort = Cutover.Platform.LoopbackPort.Free();
        var metricsPort = Cutover.Platform.LoopbackPort.Free();
        const string location = """return 200 "hello from the backend\n";""";
        var off = ProxyBenchmark.DeployNginxBackend(offWork.Path, "metricsoff", location, $"  listen: 127.0.0.1:{offPort}\n",
            new Dictionary<string, string> { ["CUTOVER_METRICS_LISTEN"] = "off" });
        var on = ProxyBenchmark.DeployNginxBackend(onWork.Path, "metricson", location, $"  listen: 127.0.0.1:{onPort}\n",
            new Dictionary<string, string> { ["CUTOVER_METRICS_LISTEN"] = $"127.0.0.1:{metricsPort}" });
        // What one scrape costs the agent (the /proc pass and the text), alone: its CPU over back-to-back scrapes.
        var scrapeCpu = await ScrapeCpuAsync(metricsPort, on.AgentPid);
        using var stopScraping = new CancellationTokenSource();
        var scrapes = 0;
        var scraper = Task.Run(async () =>
        {
            using var http = new HttpClient();
            while (!stopScraping.IsCancellationRequested)
            {
                (await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics")).AsSpan();
                scrapes++;
                try { await Task.Delay(TimeSpan.FromSeconds(1), stopScraping.Token); } catch (OperationCanceledException) { }
            }
        });
        var results = new Dictionary<bool, List<Round>> { [false] = [], [true] = [] };
        try
        {
            await Task.Delay(500);
            Wrk(offPort, "-t2 -c32 -d2s", off.AgentPid);
            Wrk(onPort, "-t2 -c32 -d2s", on.AgentPid);
            for (var round = 0; round < rounds; round++)
            {
                // Which goes first alternates too, so neither always meets the machine right after the other.
                foreach (var metricsOn in round % 2 == 0 ? new[] { false, true } : [true, false])
                    results[metricsOn].Add(metricsOn ? Wrk(onPort, WrkArgs, on.AgentPid) : Wrk(offPort, WrkArgs, off.AgentPid));
            }
        }
        finally
        {
            stopScraping.Cancel();
            await scraper;
            foreach (var pid in new[] { off.AgentPid, on.AgentPid })
            {
                Measure.Capture("kill", "-TERM", pid.ToString(CultureInfo.InvariantCulture));
                for (var i = 0; i < 300 && Directory.Exists($"/proc/{pid}"); i++) Thread.Sleep(100);
            }
        }
        static Round Median(List<Round> r) => new(Measure.Median(r.Select(x => x.Rps)), Measure.Median(r.Select(x => x.P99Ms)),
            Measure.Median(r.Select(x => x.CpuUsPerRequest)), r.Sum(x => x.Errors));
        var (offMedian, onMedian) = (Median(results[false]), Median(results[true]));
        var sb = new StringBuilder();
        sb.AppendLine($"The proxy with metrics off and on: wrk {WrkArgs}, {rounds} rounds alternating the two agents, medians; /metrics scraped every second meanwhile ({scrapes} scrapes); non-2xx answers: {offMedian.Errors + onMedian.Errors}.");
        sb.AppendLine();
        sb.AppendLine("| agent | requests/s | p99 | agent CPU per request | each round's requests/s |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var (name, metricsOn, m) in new[] { ("metrics off (`--metrics-listen off`)", false, offMedian), ("metrics on (the default), scraped every 1 s", true, onMedian) })
            sb.AppendLine($"| {name} | {m.Rps:0} | {m.P99Ms:0.00} ms | {m.CpuUsPerRequest:0.0} µs | {string.Join(", ", results[metricsOn].Select(x => x.Rps.ToString("0", CultureInfo.InvariantCulture)))} |");
        sb.AppendLine();
        // Each round's two runs are back to back, so their ratio is the steadier figure on a shared machine.
        var rpsRatio = Measure.Median(results[true].Zip(results[false], (x, y) => x.Rps / y.Rps));
        var cpuRatio = Measure.Median(results[true].Zip(results[false], (x, y) => x.CpuUsPerRequest / y.CpuUsPerRequest));
        sb.AppendLine($"Metrics on vs off, medians: requests/s {onMedian.Rps / offMedian.Rps - 1:+0.0%;-0.0%}, CPU per request {onMedian.CpuUsPerRequest / offMedian.CpuUsPerRequest - 1:+0.0%;-0.0%}; " +
                      $"median of each round's on/off ratio: requests/s {rpsRatio - 1:+0.0%;-0.0%}, CPU per request {cpuRatio - 1:+0.0%;-0.0%}. " +
                      $"One scrape alone costs the agent {scrapeCpu.TotalMilliseconds:0.0} ms of CPU ({Process.GetProcesses().Length} processes in /proc), " +
                      $"{scrapeCpu.TotalMilliseconds / 15000:0.000%} of a core at Prometheus' default 15 s interval.");
        return sb.ToString();
    }

    private static async Task<TimeSpan> ScrapeCpuAsync(int metricsPort, int agentPid)
    {
        const int scrapes = 50;
        using var http = new HttpClient();
        for (var i = 0; i < 5; i++) await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
        var before = ProxyBenchmark.ProcessCpu(agentPid);
        for (var i = 0; i < scrapes; i++) await http.GetStringAsync($"http://127.0.0.1:{metricsPort}/metrics");
        return (ProxyBenchmark.ProcessCpu(agentPid) - before) / scrapes;
    }

    private static Round Wrk(int port, string args, int agentPid)
    {
        var cpuBefore = ProxyBenchmark.ProcessCpu(agentPid);
        var output = Measure.Capture("wrk", [.. args.Split(' '), $"http://127.0.0.1:{port}/"]);
        var cpu = ProxyBenchmark.ProcessCpu(agentPid) - cpuBefore;
        var requests = long.Parse(ProxyBenchmark.RequestsPattern().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var rps = double.Parse(ProxyBenchmark.RpsPattern().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var errors = ProxyBenchmark.ErrorsPattern().Match(output) is { Success: true } m ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        return new Round(rps, ProxyBenchmark.Latency(output, "99%"), cpu.TotalMicroseconds / requests, errors);
    }

    private const int Threads = 2;
    private const int RecordsPerThread = 5_000_000;
    private static readonly double[] Buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>ns per request recorded (a status-code counter and a duration histogram), best of three, for each library.</summary>
    private static string RecordingCost()
    {
        var nothing = Enumerable.Range(0, 3).Select(_ => TimePerRecord(_ => Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp()))).Min();
        var prometheusNet = Enumerable.Range(0, 3).Select(_ => PrometheusNet()).Min();
        var openTelemetry = Enumerable.Range(0, 3).Select(_ => OpenTelemetryMeters()).Min();
        var sb = new StringBuilder();
        sb.AppendLine($"Recording one request (a status-code counter and a duration histogram), {Threads} threads at once, {RecordsPerThread:N0} each, this process's CPU time per request, best of three:");
        sb.AppendLine();
        sb.AppendLine("| library | CPU ns per request recorded |");
        sb.AppendLine("|---|---|");
        sb.AppendLine($"| nothing recorded (the two clock reads alone) | {nothing:0} |");
        sb.AppendLine($"| prometheus-net 8.2.1, series resolved ahead (Metrics/ProxyRequestMetrics, what the agent runs) | {prometheusNet:0} |");
        sb.AppendLine($"| System.Diagnostics.Metrics + OpenTelemetry 1.20.1 MeterProvider + Prometheus exporter 1.20.1-beta.1, tags per call | {openTelemetry:0} |");
        return sb.ToString();
    }

    private static double PrometheusNet()
    {
        var metrics = new Cutover.Metrics.AgentMetrics();
        var app = metrics.ForApp("bench");
        return TimePerRecord(i => app.Record((i & 15) == 0 ? 404 : 200, Stopwatch.GetTimestamp()));
    }

    private static double OpenTelemetryMeters()
    {
        using var meter = new Meter($"cutover.bench.{Guid.NewGuid():N}");
        var requests = meter.CreateCounter<long>("cutover_proxy_requests");
        var duration = meter.CreateHistogram<double>("cutover_proxy_request_duration", "s", null, null, new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
        var port = Cutover.Platform.LoopbackPort.Free();
        using var provider = Sdk.CreateMeterProviderBuilder().AddMeter(meter.Name)
            .AddPrometheusHttpListener(o => { o.Host = "127.0.0.1"; o.Port = port; }).Build();
        var app = new KeyValuePair<string, object?>("app", "bench");
        KeyValuePair<string, object?> ok = new("code", "200"), notFound = new("code", "404");
        return TimePerRecord(i =>
        {
            var started = Stopwatch.GetTimestamp();
            duration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, app);
            requests.Add(1, app, (i & 15) == 0 ? notFound : ok);
        });
    }

    /// <summary>
    /// CPU time per call: <see cref="Threads"/> threads call <paramref name="record"/> at once; this process's user + system
    /// time over the calls (CPU time, not wall time: on a shared machine the threads wait for a core, which is not the cost).
    /// </summary>
    private static double TimePerRecord(Action<int> record)
    {
        for (var i = 0; i < 100_000; i++) record(i); // JIT and tiering
        using var start = new Barrier(Threads + 1);
        var threads = Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
        {
            start.SignalAndWait();
            for (var i = 0; i < RecordsPerThread; i++) record(i);
        })).ToList();
        threads.ForEach(t => t.Start());
        using var self = Process.GetCurrentProcess();
        var cpuBefore = self.TotalProcessorTime;
        start.SignalAndWait();
        threads.ForEach(t => t.Join());
        self.Refresh();
        return (self.TotalProcessorTime - cpuBefore).TotalNanoseconds / ((double)RecordsPerThread * Threads);
    }
}
