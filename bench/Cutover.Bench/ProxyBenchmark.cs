using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Cutover.Bench;

/// <summary>
/// Proxy overhead, one run, same backend (an nginx returning a small body), same load generator (wrk):
/// straight to the backend, through Cutover's proxy as the product runs it (a real `cutover agent`, started by
/// `cutover deploy`, CPU measured on the agent process), and through nginx proxy_pass with upstream keepalive.
/// </summary>
public static partial class ProxyBenchmark
{
    private const string WrkArgs = "-t2 -c32 -d5s --latency";
    private const int Rounds = 5;

    public static async Task<string> RunAsync(string repo)
    {
        await using var paths = await Paths.StartAsync();
        var measured = new (string Name, int Port, Func<TimeSpan> Cpu)[]
        {
            ("straight to the backend", paths.BackendPort, () => ProcessGroupCpu(paths.BackendPid)),
            ("Cutover's proxy (the `cutover agent` process)", paths.CutoverPort, () => ProcessCpu(paths.AgentPid)),
            ("nginx proxy_pass, upstream keepalive (`worker_processes auto`)", paths.NginxPort, () => NginxWorkersCpu(paths.NginxProxy.Pid)),
            ("HAProxy (`mode http`, keep-alive both sides, `http-reuse always`)", paths.HaproxyPort, () => ProcessCpu(paths.Haproxy.Pid)),
            ("Caddy (`reverse_proxy`, Go's net/http as kamal-proxy and Traefik)", paths.CaddyPort, () => ProcessCpu(paths.Caddy.Pid)),
        };
        const int nginx = 2;
        // Warm up each path once (connection pools; for the agent, tiered JIT, which re-compiles the hot methods in the
        // background for several seconds after start: its CPU per request still fell from ~17 to ~16 µs between 10 and
        // 20 s of load, 19:40Z; a long-running agent is measured in its steady state), 15 s each, then measure.
        foreach (var path in measured) Wrk(path.Port, "-t2 -c32 -d15s", () => TimeSpan.Zero);
        // Rounds alternate the paths, so a noisy moment on the shared machine hits them all alike.
        var runs = measured.Select(_ => new List<WrkResult>()).ToArray();
        for (var round = 0; round < Rounds; round++)
            for (var i = 0; i < measured.Length; i++)
            {
                runs[i].Add(Wrk(measured[i].Port, WrkArgs, measured[i].Cpu));
                Console.Error.WriteLine($"proxy round {round + 1}/{Rounds}: {measured[i].Name}: {runs[i][^1].Rps:0} req/s, p99 {runs[i][^1].P99Ms:0.00} ms");
            }
        static WrkResult Median(List<WrkResult> r) => new(
            Measure.Median(r.Select(x => x.Rps)), Measure.Median(r.Select(x => x.P50Ms)), Measure.Median(r.Select(x => x.P99Ms)),
            Measure.Median(r.Select(x => x.CpuUsPerRequest)), r.Sum(x => x.Errors));
        var results = runs.Select(Median).ToArray();
        var viaNginx = results[nginx];

        var sb = new StringBuilder();
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores; wrk {WrkArgs}, median of {Rounds} alternating rounds; backend: nginx `return 200`; proxies and wrk share the machine; non-2xx answers: {results.Sum(r => r.Errors)}. CPU per request is the serving process's user + system time over the requests it answered (for the backend row, the backend's own).");
        sb.AppendLine();
        sb.AppendLine("| path | requests/s | p50 | p99 | CPU per request | requests/s vs nginx | p99 vs nginx | CPU per request vs nginx |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|");
        for (var i = 0; i < measured.Length; i++)
        {
            var r = results[i];
            sb.AppendLine($"| {measured[i].Name} | {r.Rps:0} | {r.P50Ms:0.00} ms | {r.P99Ms:0.00} ms | {r.CpuUsPerRequest:0.0} µs | {r.Rps / viaNginx.Rps:0.00} | {r.P99Ms / viaNginx.P99Ms:0.00} | {r.CpuUsPerRequest / viaNginx.CpuUsPerRequest:0.00} |");
        }
        return sb.ToString();
    }

    /// <summary>Serves the benchmark's paths until Enter, for profiling (perf, strace) with wrk by hand.</summary>
    public static async Task ServeAsync()
    {
        await using var paths = await Paths.StartAsync();
        Console.WriteLine($"backend {paths.BackendPort} cutover {paths.CutoverPort} (agent pid {paths.AgentPid}) nginx {paths.NginxPort} haproxy {paths.HaproxyPort} caddy {paths.CaddyPort}");
        await Task.Run(Console.ReadLine);
    }

    /// <summary>
    /// The paths. Cutover's is the product as it runs: `cutover deploy` of a rolling app to a private CUTOVER_HOME
    /// starts the real `cutover agent` in the background (its settings, its logging, its proxy), and the app's one
    /// instance is the backend nginx itself, so every path reaches the very same backend. The peers run with their
    /// defaults plus keep-alive to the backend, no access log (the agent's is off by default too).
    /// </summary>
    private sealed class Paths : IAsyncDisposable
    {
        private readonly TempWork _work;

        private Paths(TempWork work, int agentPid, int backendPid, PeerProcess nginxProxy, int cutoverPort, int backendPort, int nginxPort,
            PeerProcess haproxy, int haproxyPort, PeerProcess caddy, int caddyPort)
        {
            Haproxy = haproxy;
            HaproxyPort = haproxyPort;
            Caddy = caddy;
            CaddyPort = caddyPort;
            _work = work;
            AgentPid = agentPid;
            BackendPid = backendPid;
            NginxProxy = nginxProxy;
            CutoverPort = cutoverPort;
            BackendPort = backendPort;
            NginxPort = nginxPort;
        }

        public int AgentPid { get; }
        /// <summary>The instance's nginx master (the agent starts it; its workers answer).</summary>
        public int BackendPid { get; }
        public PeerProcess NginxProxy { get; }
        public int BackendPort { get; }
        public int NginxPort { get; }
        public int CutoverPort { get; }
        public PeerProcess Haproxy { get; }
        public int HaproxyPort { get; }
        public PeerProcess Caddy { get; }
        public int CaddyPort { get; }

        public static async Task<Paths> StartAsync()
        {
            var work = new TempWork();
            var cutoverPort = Cutover.Platform.LoopbackPort.Free();
            var (backendPort, backendPid, agentPid) = DeployNginxBackend(work.Path, "proxybench", """return 200 "hello from the backend\n";""",
                $"  listen: 127.0.0.1:{cutoverPort}\n");

            var nginxPort = Cutover.Platform.LoopbackPort.Free();
            var nginxProxy = StartNginx(work.Path, "proxy", $$"""
                upstream backend { server 127.0.0.1:{{backendPort}}; keepalive 64; }
                server { listen 127.0.0.1:{{nginxPort}}; keepalive_requests 1000000;
                  location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } }
                """, workers: "auto");

            // Debian's haproxy 2.6 in the foreground, one process, a thread per core (its default).
            var haproxyPort = Cutover.Platform.LoopbackPort.Free();
            var haproxyConf = Path.Combine(work.Path, "haproxy.cfg");
            File.WriteAllText(haproxyConf, $"defaults\n  mode http\n  option http-keep-alive\n  http-reuse always\n" +
                $"  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend web\n  bind 127.0.0.1:{haproxyPort}\n  default_backend app\n" +
                $"backend app\n  server backend 127.0.0.1:{backendPort}\n");
            var haproxy = new PeerProcess(Process.Start(Daemon("/usr/sbin/haproxy", "-db", "-q", "-f", haproxyConf))!);

            // Debian's caddy 2.6, no admin endpoint, no automatic HTTPS, its data under the work directory.
            var caddyPort = Cutover.Platform.LoopbackPort.Free();
            var caddyFile = Path.Combine(work.Path, "Caddyfile");
            File.WriteAllText(caddyFile, $"{{\n  admin off\n  auto_https off\n}}\nhttp://127.0.0.1:{caddyPort} {{\n  reverse_proxy 127.0.0.1:{backendPort}\n}}\n");
            var caddyStart = Daemon("/usr/bin/caddy", "run", "--config", caddyFile, "--adapter", "caddyfile");
            caddyStart.RedirectStandardError = true;
            caddyStart.Environment["XDG_DATA_HOME"] = Path.Combine(work.Path, "caddy-data");
            caddyStart.Environment["XDG_CONFIG_HOME"] = Path.Combine(work.Path, "caddy-config");
            var caddyProcess = Process.Start(caddyStart)!;
            // Caddy logs to stderr: read it away so a full pipe never stalls it.
            caddyProcess.ErrorDataReceived += (_, _) => { };
            caddyProcess.BeginErrorReadLine();
            var caddy = new PeerProcess(caddyProcess);
            foreach (var port in new[] { haproxyPort, caddyPort })
                for (var i = 0; i < 100 && !UpgradeBenchmark.Answers(port); i++) await Task.Delay(50);
            await Task.Delay(500);
            return new Paths(work, agentPid, backendPid, nginxProxy, cutoverPort, backendPort, nginxPort, haproxy, haproxyPort, caddy, caddyPort);
        }

        public ValueTask DisposeAsync()
        {
            // SIGTERM: the agent drains and stops the instance (the backend) and exits, as it does for a person.
            Measure.Capture("kill", "-TERM", AgentPid.ToString(CultureInfo.InvariantCulture));
            for (var i = 0; i < 300 && Directory.Exists($"/proc/{AgentPid}"); i++) Thread.Sleep(100);
            NginxProxy.Dispose();
            Haproxy.Dispose();
            Caddy.Dispose();
            _work.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <summary>Runs the `cutover` CLI (this build's, or CUTOVER_BENCH_CLI's) with CUTOVER_HOME=<paramref name="home"/>; its stdout.</summary>
    internal static string RunCutover(string home, params string[] args) => RunCutover(home, null, args);

    /// <param name="environment">More variables for the command (and so for the agent a deploy starts), e.g. CUTOVER_METRICS_LISTEN.</param>
    internal static string RunCutover(string home, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        // CUTOVER_BENCH_CLI measures another build's agent (the README's "before" row was an older cutover.dll).
        var cli = Environment.GetEnvironmentVariable("CUTOVER_BENCH_CLI") is { Length: > 0 } other ? other : Path.Combine(AppContext.BaseDirectory, "cutover.dll");
        return RunCutover("dotnet", ["exec", cli], home, environment, args);
    }

    /// <summary>A published cutover (<paramref name="binary"/>: the native one hands deploy and the agent to its jit/ build) as users run it.</summary>
    internal static string RunPublishedCutover(string binary, string home, params string[] args) => RunCutover(binary, [], home, null, args);

    private static string RunCutover(string file, string[] leading, string home, IReadOnlyDictionary<string, string>? environment, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in leading.Concat(args)) start.ArgumentList.Add(a);
        start.Environment["CUTOVER_HOME"] = home;
        foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"cutover {string.Join(' ', args)} exited {process.ExitCode}: {stderr} {stdout.Result}");
        return stdout.Result;
    }

    /// <summary>User + system time of one process, from /proc/&lt;pid&gt;/stat (clock ticks are 1/100 s).</summary>
    internal static TimeSpan ProcessCpu(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return TimeSpan.FromMilliseconds((long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) * 10);
    }

    /// <summary>User + system time of an nginx master's worker processes, from /proc (clock ticks are 1/100 s).</summary>
    internal static TimeSpan NginxWorkersCpu(int masterPid) => ProcCpu(fields => int.Parse(fields[1], CultureInfo.InvariantCulture) == masterPid);

    /// <summary>
    /// User + system time of every process in the group an instance leads: the pid `cutover status` shows is the
    /// group leader (the agent's exit-status wrapper), and the app (here nginx, master and worker) runs below it.
    /// </summary>
    internal static TimeSpan ProcessGroupCpu(int leader) => ProcCpu(fields => int.Parse(fields[2], CultureInfo.InvariantCulture) == leader);

    private static TimeSpan ProcCpu(Func<string[], bool> counts)
    {
        long ticks = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); }
            catch (IOException) { continue; }
            // Fields after the ")" that closes the command name: state ppid pgrp ... utime(14) stime(15), counted from 1.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            if (!counts(fields)) continue;
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

    internal static double Latency(string output, string percentile)
    {
        var m = Regex.Match(output, $@"{Regex.Escape(percentile)}\s+([\d.]+)(us|ms|s)");
        if (!m.Success) return double.NaN; // a warm-up run without --latency
        var value = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
        return m.Groups[2].Value switch { "us" => value / 1000, "s" => value * 1000, _ => value };
    }

    [GeneratedRegex(@"Requests/sec:\s+([\d.]+)")]
    internal static partial Regex RpsPattern();

    [GeneratedRegex(@"(\d+) requests in")]
    internal static partial Regex RequestsPattern();

    [GeneratedRegex(@"Non-2xx or 3xx responses:\s+(\d+)")]
    internal static partial Regex ErrorsPattern();

    /// <summary>A peer process the benchmark started (nginx, HAProxy, Caddy), killed with its children when disposed.</summary>
    internal sealed class PeerProcess(Process process) : IDisposable
    {
        public int Pid => process.Id;

        public void Dispose()
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit();
            process.Dispose();
        }
    }

    /// <summary>
    /// Deploys, as a user would (`cutover deploy` of a rolling app, so the real agent runs it), one nginx instance that
    /// answers every request with <paramref name="location"/> on the port the agent gives it; logs and temp files stay in
    /// its release. <paramref name="proxy"/> is the body of the config's proxy section.
    /// </summary>
    internal static (int BackendPort, int BackendPid, int AgentPid) DeployNginxBackend(string work, string appName, string location, string proxy,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var home = Path.Combine(work, "home");
        var app = Path.Combine(work, "app");
        Directory.CreateDirectory(app);
        var user = Environment.UserName == "root" ? "user root root;" : "";
        File.WriteAllText(Path.Combine(app, "nginx.conf.in"), $$"""
            {{user}}
            worker_processes 1;
            pid nginx-@PORT@.pid;
            error_log stderr warn;
            events { worker_connections 4096; }
            http {
              access_log off;
              client_body_temp_path body; proxy_temp_path proxy; fastcgi_temp_path fcgi; uwsgi_temp_path uwsgi; scgi_temp_path scgi;
              server { listen 127.0.0.1:@PORT@; keepalive_requests 1000000;
                location / { {{location}} } }
            }
            """);
        var config = Path.Combine(work, "cutover.yml");
        File.WriteAllText(config, $"""
            app: {appName}
            strategy: rolling
            root: {Path.Combine(work, "root")}
            run:
              command: sed "s/@PORT@/$PORT/g" nginx.conf.in > nginx-$PORT.conf && exec /usr/sbin/nginx -p "$PWD/" -c "$PWD/nginx-$PORT.conf" -g "daemon off;"
              instances: 1
              ready: tcp
            proxy:
            {proxy}
            """);
        RunCutover(home, environment, "deploy", app, "-c", config);
        var status = System.Text.Json.JsonDocument.Parse(RunCutover(home, "status", "--json", "-c", config)).RootElement.GetProperty("agent");
        var instance = status.GetProperty("instances")[0];
        var agentPid = int.Parse(File.ReadAllText(Path.Combine(home, "agent.pid")), CultureInfo.InvariantCulture);
        return (instance.GetProperty("port").GetInt32(), instance.GetProperty("pid").GetInt32(), agentPid);
    }

    internal static PeerProcess StartNginx(string work, string name, string server, string workers = "1")
    {
        var dir = Path.Combine(work, name);
        Directory.CreateDirectory(Path.Combine(dir, "logs"));
        var user = Environment.UserName == "root" ? "user root root;" : "";
        File.WriteAllText(Path.Combine(dir, "nginx.conf"), $$"""
            {{user}}
            worker_processes {{workers}};
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
        return new PeerProcess(Process.Start(Daemon("/usr/sbin/nginx", "-p", dir, "-c", Path.Combine(dir, "nginx.conf"), "-g", "daemon off;"))!);
    }

    /// <summary>
    /// A peer server started as a daemon is, in a session of its own (setsid execs it in place: the pid is the server's),
    /// as the agent and its instances run. With the kernel's autogroup scheduling (on in Debian) each session is a
    /// scheduling group of its own: a peer left in the benchmark's session would share its group with wrk, the agent
    /// would not, and the two would not be scheduled alike.
    /// </summary>
    internal static ProcessStartInfo Daemon(string file, params string[] arguments) =>
        new("setsid", [file, .. arguments]) { UseShellExecute = false };


    internal sealed class TempWork : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("cutover-proxy-bench-").FullName;
        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
