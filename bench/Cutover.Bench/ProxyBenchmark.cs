using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Cutover.Proxy;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Bench;

/// <summary>
/// Proxy overhead, one run, same backend (an nginx returning a small body), same load generator (wrk):
/// straight to the backend, through Cutover's proxy, and through nginx proxy_pass with upstream keepalive.
/// </summary>
public static partial class ProxyBenchmark
{
    private const string WrkArgs = "-t2 -c32 -d5s --latency";
    private const int Rounds = 3;

    public static async Task<string> RunAsync(string repo)
    {
        await using var paths = await Paths.StartAsync();
        // Warm up each path once (JIT, connection pools), then measure.
        foreach (var port in new[] { paths.BackendPort, paths.CutoverPort, paths.NginxPort }) Wrk(port, "-t2 -c32 -d2s", () => TimeSpan.Zero);
        // Rounds alternate the three paths, so a noisy moment on the shared machine hits them all alike.
        var runs = new List<WrkResult>[] { [], [], [] };
        for (var round = 0; round < Rounds; round++)
        {
            runs[0].Add(Wrk(paths.BackendPort, WrkArgs, () => NginxWorkersCpu(paths.Backend)));
            runs[1].Add(Wrk(paths.CutoverPort, WrkArgs, OwnCpu));
            runs[2].Add(Wrk(paths.NginxPort, WrkArgs, () => NginxWorkersCpu(paths.NginxProxy)));
        }
        static WrkResult Median(List<WrkResult> r) => new(
            Measure.Median(r.Select(x => x.Rps)), Measure.Median(r.Select(x => x.P50Ms)), Measure.Median(r.Select(x => x.P99Ms)),
            Measure.Median(r.Select(x => x.CpuUsPerRequest)), r.Sum(x => x.Errors));
        var direct = Median(runs[0]);
        var viaCutover = Median(runs[1]);
        var viaNginx = Median(runs[2]);

        var sb = new StringBuilder();
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores; wrk {WrkArgs}, median of {Rounds} alternating rounds; backend: nginx `return 200`; proxies and wrk share the machine; non-2xx answers: {direct.Errors + viaCutover.Errors + viaNginx.Errors}. CPU per request is the serving process's user + system time over the requests it answered (for the backend row, the backend's own).");
        sb.AppendLine();
        sb.AppendLine("| path | requests/s | p50 | p99 | CPU per request | requests/s vs nginx | p99 vs nginx | CPU per request vs nginx |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (var (name, r) in new[] { ("straight to the backend", direct), ("Cutover's proxy (Kestrel + YARP forwarder)", viaCutover), ("nginx proxy_pass, upstream keepalive", viaNginx) })
            sb.AppendLine($"| {name} | {r.Rps:0} | {r.P50Ms:0.00} ms | {r.P99Ms:0.00} ms | {r.CpuUsPerRequest:0.0} µs | {r.Rps / viaNginx.Rps:0.00} | {r.P99Ms / viaNginx.P99Ms:0.00} | {r.CpuUsPerRequest / viaNginx.CpuUsPerRequest:0.00} |");
        return sb.ToString();
    }

    /// <summary>Serves the benchmark's three paths until Enter, for profiling (perf, strace) with wrk by hand.</summary>
    public static async Task ServeAsync()
    {
        await using var paths = await Paths.StartAsync();
        Console.WriteLine($"backend {paths.BackendPort} cutover {paths.CutoverPort} nginx {paths.NginxPort} pid {Environment.ProcessId}");
        await Task.Run(Console.ReadLine);
    }

    /// <summary>The three paths: a backend nginx, Cutover's proxy in this process, and an nginx proxy, each on its own port.</summary>
    private sealed class Paths : IAsyncDisposable
    {
        private readonly TempWork _work;
        private readonly ProxyServer _cutover;

        private Paths(TempWork work, NginxProcess backend, NginxProcess nginxProxy, ProxyServer cutover, int backendPort, int nginxPort)
        {
            _work = work;
            Backend = backend;
            NginxProxy = nginxProxy;
            _cutover = cutover;
            BackendPort = backendPort;
            NginxPort = nginxPort;
        }

        public NginxProcess Backend { get; }
        public NginxProcess NginxProxy { get; }
        public int BackendPort { get; }
        public int NginxPort { get; }
        public int CutoverPort => _cutover.Listen.Port;

        public static async Task<Paths> StartAsync()
        {
            var work = new TempWork();
            var backendPort = Cutover.Platform.LoopbackPort.Free();
            var nginxPort = Cutover.Platform.LoopbackPort.Free();
            var backend = StartNginx(work.Path, "backend", $$"""
                server { listen 127.0.0.1:{{backendPort}}; keepalive_requests 1000000;
                  location / { return 200 "hello from the backend\n"; } }
                """);
            var nginxProxy = StartNginx(work.Path, "proxy", $$"""
                upstream backend { server 127.0.0.1:{{backendPort}}; keepalive 64; }
                server { listen 127.0.0.1:{{nginxPort}}; keepalive_requests 1000000;
                  location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } }
                """);
            var pool = new BackendPool();
            pool.Add(new Backend("backend", new IPEndPoint(IPAddress.Loopback, backendPort)));
            var cutover = await ProxyServer.StartAsync(new IPEndPoint(IPAddress.Loopback, Cutover.Platform.LoopbackPort.Free()), pool, NullLoggerFactory.Instance, CancellationToken.None);
            await Task.Delay(500);
            return new Paths(work, backend, nginxProxy, cutover, backendPort, nginxPort);
        }

        public async ValueTask DisposeAsync()
        {
            await _cutover.DisposeAsync();
            NginxProxy.Dispose();
            Backend.Dispose();
            _work.Dispose();
        }
    }

    private static TimeSpan OwnCpu() => Process.GetCurrentProcess().TotalProcessorTime;

    /// <summary>User + system time of an nginx master's worker processes, from /proc (clock ticks are 1/100 s).</summary>
    private static TimeSpan NginxWorkersCpu(NginxProcess nginx)
    {
        long ticks = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); }
            catch (IOException) { continue; }
            // Fields after the ")" that closes the command name: state ppid ... utime(14) stime(15), counted from 1.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (int.Parse(fields[1], CultureInfo.InvariantCulture) != nginx.Pid) continue;
            ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        return TimeSpan.FromMilliseconds(ticks * 10);
    }

    private sealed record WrkResult(double Rps, double P50Ms, double P99Ms, double CpuUsPerRequest, long Errors);

    private static WrkResult Wrk(int port, string args, Func<TimeSpan> serverCpu)
    {
        var cpuBefore = serverCpu();
        var output = Measure.Capture("wrk", [.. args.Split(' '), $"http://127.0.0.1:{port}/"]);
        var cpu = serverCpu() - cpuBefore;
        var requests = long.Parse(RequestsPattern().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var rps = double.Parse(RpsPattern().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var errors = ErrorsPattern().Match(output) is { Success: true } m ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        return new WrkResult(rps, Latency(output, "50%"), Latency(output, "99%"), cpu.TotalMicroseconds / requests, errors);
    }

    private static double Latency(string output, string percentile)
    {
        var m = Regex.Match(output, $@"{Regex.Escape(percentile)}\s+([\d.]+)(us|ms|s)");
        if (!m.Success) return double.NaN; // a warm-up run without --latency
        var value = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch { "us" => value / 1000, "s" => value * 1000, _ => value };
    }

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    private static partial Regex RpsPattern();

    [GeneratedRegex(@"(\d+) requests in")]
    private static partial Regex RequestsPattern();

    [GeneratedRegex(@"Non-2xx or 3xx responses:\s+(\d+)")]
    private static partial Regex ErrorsPattern();

    private sealed class NginxProcess(Process process) : IDisposable
    {
        public int Pid => process.Id;

        public void Dispose()
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit();
            process.Dispose();
        }
    }

    private static NginxProcess StartNginx(string work, string name, string server)
    {
        var dir = Path.Combine(work, name);
        Directory.CreateDirectory(Path.Combine(dir, "logs"));
        var user = Environment.UserName == "root" ? "user root root;" : "";
        File.WriteAllText(Path.Combine(dir, "nginx.conf"), $$"""
            {{user}}
            worker_processes 1;
            pid {{dir}}/nginx.pid;
            error_log {{dir}}/logs/error.log warn;
            events { worker_connections 4096; }
            http {
              access_log off;
              client_body_temp_path {{dir}}/body; proxy_temp_path {{dir}}/proxy; fastcgi_temp_path {{dir}}/fcgi;
              uwsgi_temp_path {{dir}}/uwsgi; scgi_temp_path {{dir}}/scgi;
              {{server}}
            }
            """);
        var start = new ProcessStartInfo("/usr/sbin/nginx", ["-p", dir, "-c", Path.Combine(dir, "nginx.conf"), "-g", "daemon off;"]) { UseShellExecute = false };
        return new NginxProcess(Process.Start(start)!);
    }


    private sealed class TempWork : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("cutover-proxy-bench-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
