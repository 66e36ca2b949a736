using System.Diagnostics;
using System.Text;
using Cutover.BlueGreen;
using Cutover.Config;
using Cutover.Progress;
using Cutover.Supervisor;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Bench;

/// <summary>
/// Blue-green switch and rollback latency under load: from the command to the point after which every
/// response comes from the new set, in Cutover's proxy, through the nginx router and through the HAProxy router
/// (runtime API, no reload), with failed requests.
/// </summary>
public static class SwitchBenchmark
{
    private sealed record Sample(double StartMs, double EndMs, bool Ok, string Version);

    public static async Task<string> RunAsync(string repo, int switches = 6)
    {
        var builtin = await MeasureAsync(repo, "builtin", switches);
        var viaNginx = await MeasureAsync(repo, "nginx", switches);
        var viaHaproxy = File.Exists("/usr/sbin/haproxy") ? await MeasureAsync(repo, "haproxy", switches) : null;
        var sb = new StringBuilder();
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores; examples/node-app at 2 instances; 16 keep-alive clients without pause; {switches} deploys and {switches} rollbacks per router, alternating.");
        sb.AppendLine();
        sb.AppendLine("| router | deploy: command to 100% new (median / max) | rollback: command to 100% new (median / max) | rollback: command to switch done (median / max) | requests | failed |");
        sb.AppendLine("|---|---|---|---|---|---|");
        foreach (var (name, r) in new[] { ("builtin (Cutover's proxy)", builtin), ("nginx (upstream file + reload)", viaNginx), ("haproxy (runtime API, no reload)", viaHaproxy) })
            if (r is not null) sb.AppendLine($"| {name} | {Measure.Median(r.Deploy):0.0} / {r.Deploy.Max():0.0} ms | {Measure.Median(r.Rollback):0.00} / {r.Rollback.Max():0.00} ms | {Measure.Median(r.RollbackCall):0.00} / {r.RollbackCall.Max():0.00} ms | {r.Requests} | {r.Failed} |");
        sb.AppendLine();
        sb.AppendLine("\"Command to 100% new\" is the end of the last request that started after the command and was still answered by the old set (0 when none was). \"Command to switch done\" is how long the rollback call took to return: the pool swap, or the upstream file, `nginx -t` and the reload, or HAProxy's add/ready/drain and the wait for the drained servers' sessions to end before they are deleted.");
        if (viaHaproxy is null) sb.AppendLine("\nhaproxy: not measured (/usr/sbin/haproxy missing; bench/run.sh installs it).");
        return sb.ToString();
    }

    private sealed record Result(List<double> Deploy, List<double> Rollback, List<double> RollbackCall, long Requests, long Failed);

    private static async Task<Result> MeasureAsync(string repo, string routerName, int switches)
    {
        var nginx = routerName == "nginx";
        var haproxy = routerName == "haproxy";
        var work = Directory.CreateTempSubdirectory("cutover-switch-bench-").FullName;
        Process? nginxProcess = null;
        Process? haproxyProcess = null;
        try
        {
            string Release(string version)
            {
                var dir = Path.Combine(work, "releases", version);
                if (Directory.Exists(dir)) return dir;
                Directory.CreateDirectory(dir);
                File.Copy(Path.Combine(repo, "examples", "node-app", "server.js"), Path.Combine(dir, "server.js"));
                File.WriteAllText(Path.Combine(dir, "VERSION"), version);
                return dir;
            }
            var proxyPort = Cutover.Platform.LoopbackPort.Free();
            var nginxPort = Cutover.Platform.LoopbackPort.Free();
            var nginxDir = Path.Combine(work, "nginx");
            var upstream = Path.Combine(nginxDir, "upstream.conf");
            var conf = Path.Combine(nginxDir, "nginx.conf");
            var haproxySocket = Path.Combine(work, "haproxy.sock");
            var router = nginx
                ? $"router: nginx\nnginx:\n  upstream_file: {upstream}\n  test: /usr/sbin/nginx -p {nginxDir} -c {conf} -t\n  reload: /usr/sbin/nginx -p {nginxDir} -c {conf} -s reload\n"
                : haproxy ? $"router: haproxy\nhaproxy:\n  socket: {haproxySocket}\n  backend: app\n"
                : "router: builtin\n";
            var config = ConfigLoader.Parse($"app: sw\nstrategy: blue-green\nroot: {work}\nrun:\n  command: node server.js\n  instances: 2\n  ready: message\n" +
                                            $"proxy:\n  listen: 127.0.0.1:{proxyPort}\n  drain_timeout: 5s\nblue_green:\n  monitor: 0s\n" + router,
                Path.Combine(work, "cutover.yml"));
            using var http = new HttpClient();
            await using var app = await AppRuntime.CreateAsync(config, work, http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
            if (await app.StartAllAsync("r0", Release("0"), CancellationToken.None) is { } startError) throw new InvalidOperationException(startError);
            var warmSet = new WarmSetKeeper();
            var bg = new BlueGreenSwitch(app, warmSet, new SilentProgress());
            var url = $"http://127.0.0.1:{proxyPort}/";
            if (nginx)
            {
                Directory.CreateDirectory(Path.Combine(nginxDir, "logs"));
                File.WriteAllText(upstream, new NginxRouter(config.SettingsOf<BlueGreenSettings>().BlueGreen.Nginx!).Render(app.Slots.Select(s => s!.Endpoint!)));
                File.WriteAllText(conf, $$"""
                    {{(Environment.UserName == "root" ? "user root root;" : "")}}
                    worker_processes 1; pid {{nginxDir}}/nginx.pid; error_log {{nginxDir}}/logs/error.log warn;
                    events { worker_connections 1024; }
                    http { access_log off; include {{upstream}};
                      client_body_temp_path {{nginxDir}}/b; proxy_temp_path {{nginxDir}}/p; fastcgi_temp_path {{nginxDir}}/f; uwsgi_temp_path {{nginxDir}}/u; scgi_temp_path {{nginxDir}}/s;
                      server { listen 127.0.0.1:{{nginxPort}}; keepalive_requests 1000000;
                        location / { proxy_pass http://app_backend; proxy_http_version 1.1; proxy_set_header Connection ""; } } }
                    """);
                nginxProcess = Process.Start(new ProcessStartInfo("/usr/sbin/nginx", ["-p", nginxDir, "-c", conf, "-g", "daemon off;"]) { UseShellExecute = false });
                url = $"http://127.0.0.1:{nginxPort}/";
                await Task.Delay(500);
            }
            if (haproxy)
            {
                // Debian's haproxy 2.6, one process in the foreground, keep-alive both sides (HAProxy's default in http mode).
                var haproxyConf = Path.Combine(work, "haproxy.cfg");
                File.WriteAllText(haproxyConf, $"global\n  stats socket {haproxySocket} mode 600 level admin\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n" +
                                               $"frontend web\n  bind 127.0.0.1:{nginxPort}\n  default_backend app\nbackend app\n  balance roundrobin\n");
                haproxyProcess = Process.Start(new ProcessStartInfo("/usr/sbin/haproxy", ["-db", "-q", "-f", haproxyConf]) { UseShellExecute = false });
                for (var i = 0; i < 100 && !File.Exists(haproxySocket); i++) await Task.Delay(50);
                if (await bg.RouteLiveSetAsync(CancellationToken.None) is { } routeError) throw new InvalidOperationException(routeError);
                url = $"http://127.0.0.1:{nginxPort}/";
                await Task.Delay(500);
            }

            var samples = new List<Sample>[16];
            var clock = Stopwatch.StartNew();
            using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(5));
            using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 16, UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };
            var workers = Enumerable.Range(0, 16).Select(w => Task.Run(async () =>
            {
                var mine = samples[w] = [];
                while (!stop.IsCancellationRequested)
                {
                    var start = clock.Elapsed.TotalMilliseconds;
                    try
                    {
                        var body = await client.GetStringAsync(url);
                        mine.Add(new Sample(start, clock.Elapsed.TotalMilliseconds, true, body.Split(' ')[2]));
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        mine.Add(new Sample(start, clock.Elapsed.TotalMilliseconds, false, ""));
                    }
                }
            })).ToArray();
            await Task.Delay(1000);

            var commands = new List<(double Ms, string Version, bool Rollback)>();
            var rollbackCalls = new List<double>();
            for (var i = 1; i <= switches; i++)
            {
                var version = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                commands.Add((clock.Elapsed.TotalMilliseconds, version, false));
                if (await bg.RunAsync($"r{i}", Release(version), CancellationToken.None) is { } e1) throw new InvalidOperationException(e1);
                await Task.Delay(1500);
                var warm = warmSet.Current!;
                var rollbackAt = clock.Elapsed.TotalMilliseconds;
                commands.Add((rollbackAt, warm.ReleaseId[1..], true));
                if (await bg.RunAsync(warm.ReleaseId, warm.ReleaseDir, CancellationToken.None) is { } e2) throw new InvalidOperationException(e2);
                rollbackCalls.Add(clock.Elapsed.TotalMilliseconds - rollbackAt);
                await Task.Delay(1500);
            }
            stop.Cancel();
            await Task.WhenAll(workers);
            var all = samples.SelectMany(s => s).OrderBy(s => s.StartMs).ToList();

            var deploy = new List<double>();
            var rollback = new List<double>();
            for (var c = 0; c < commands.Count; c++)
            {
                var (at, version, isRollback) = commands[c];
                var until = c + 1 < commands.Count ? commands[c + 1].Ms : double.MaxValue;
                var window = all.Where(s => s.StartMs >= at && s.StartMs < until).ToList();
                // the start of the first request after which every answer came from the new set
                var lastOld = window.LastOrDefault(s => s.Version != version);
                var settled = lastOld is null ? at : lastOld.EndMs;
                (isRollback ? rollback : deploy).Add(settled - at);
            }
            return new Result(deploy, rollback, rollbackCalls, all.Count, all.Count(s => !s.Ok));
        }
        finally
        {
            if (nginxProcess is { HasExited: false }) { nginxProcess.Kill(entireProcessTree: true); nginxProcess.WaitForExit(); }
            if (haproxyProcess is { HasExited: false }) { haproxyProcess.Kill(entireProcessTree: true); haproxyProcess.WaitForExit(); }
            try { Directory.Delete(work, recursive: true); } catch (IOException) { }
        }
    }

}
