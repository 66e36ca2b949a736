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
public static partial class SwitchBenchmark
{
    private sealed record Sample(double StartMs, double EndMs, bool Ok, string Version);

    /// <summary>
    /// The whole benchmark; returns the README block. It takes many minutes, so <paramref name="progress"/> gets a line per
    /// mode as it starts, a line per round as it is measured, and each table row as soon as its mode is done: a run cut
    /// short still shows what it measured.
    /// </summary>
    /// <param name="only">Routers to measure ("builtin", "nginx", "haproxy", "cli", "agent"); empty: all of them.</param>
    /// <param name="switches">Deploys and rollbacks per router (rounds).</param>
    public static async Task<string> RunAsync(string repo, IReadOnlyCollection<string> only, TextWriter progress, int switches = 6)
    {
        bool Wanted(string name) => only.Count == 0 || only.Contains(name);
        static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[0];
        var report = new Progress(progress);
        var loadBefore = LoadAverage();
        // All routers set up at once, then measured a round each in turn: a busy moment of a shared machine falls on
        // every router alike instead of on whichever ran then.
        var routers = new[] { "builtin", "nginx", "haproxy" }.Where(r => Wanted(r) && (r != "haproxy" || File.Exists("/usr/sbin/haproxy"))).ToArray();
        if (routers.Length > 0)
        {
            report.Line($"routers {string.Join(", ", routers)}: {switches} rounds each, taking turns (load average {loadBefore})");
            report.Row(RouterHeader);
        }
        var turns = new Turns(routers.Length);
        var measured = await Task.WhenAll(routers.Select(async (router, who) =>
        {
            var result = await MeasureAsync(repo, router, switches, turns, who, report);
            report.Row(RouterRow(router, result));
            return result;
        }));
        Result? Of(string router) => Array.IndexOf(routers, router) is var at and >= 0 ? measured[at] : null;
        CliResult? cli = null;
        if (Wanted("cli"))
        {
            report.Line($"cli: `cutover deploy` and `cutover rollback` as processes, {switches} of each (load average {LoadAverage()})");
            // On a worker thread: the await before may resume on a socket thread (inline completions), and RunCutover's wait
            // there for the child's output, which that very thread would deliver, never ends (the run hung here).
            cli = await Task.Run(() => MeasureCliAsync(repo, switches, report));
            report.Row(CliHeader);
            foreach (var row in CliRows(cli)) report.Row(row);
        }
        AgentResult? agent = null;
        if (Wanted("agent"))
        {
            report.Line($"agent: activate requests to a real agent, {switches} deploys and rollbacks under load, then quiet rounds (load average {LoadAverage()})");
            agent = await Task.Run(() => MeasureAgentAsync(repo, switches, report));
            report.Row(AgentResult.Header);
            foreach (var row in agent.Rows(Ms)) report.Row(row);
        }
        var sb = new StringBuilder();
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores (load average: {loadBefore} before, {LoadAverage()} after); examples/node-app at 2 instances (ready: message); 16 keep-alive clients without pause; {switches} deploys and {switches} rollbacks per router, alternating, the routers taking turns round by round.");
        sb.AppendLine();
        sb.AppendLine(RouterHeader);
        foreach (var router in new[] { "builtin", "nginx", "haproxy" })
            if (Of(router) is { } r) sb.AppendLine(RouterRow(router, r));
        sb.AppendLine();
        sb.AppendLine("\"Command to 100% new\" is the end of the last request that started after the command, ended before the next one, and was answered by another release (0 when none was). \"The green set starting\" is the switch's green phase: the new instances started and ready, out of rotation. \"Command to switch done\" is how long the rollback call took to return: the pool swap, or the upstream file, `nginx -t` and the reload, or HAProxy's add/ready/drain and the wait for the drained servers' sessions to end before they are deleted.");
        if (Wanted("haproxy") && Of("haproxy") is null) sb.AppendLine("\nhaproxy: not measured (/usr/sbin/haproxy missing; bench/run.sh installs it).");
        if (cli is not null)
        {
            sb.AppendLine();
            sb.AppendLine("The same load and app through the product end to end: `cutover deploy DIR` and `cutover rollback` run as processes of the published (native) cutover, the real agent's proxy serving the clients.");
            sb.AppendLine();
            sb.AppendLine(CliHeader);
            foreach (var row in CliRows(cli)) sb.AppendLine(row);
            sb.AppendLine();
            sb.AppendLine("A rollback's parts come from its history line: the pipeline is `started` to `finished` (from after the config is loaded to the history write), the agent's part its `instances` phase; the rest of the whole process is the native binary's start-up, command parsing and config loading before it and the exit after it.");
        }
        if (agent is not null) sb.Append(agent.Render(Ms));
        return sb.ToString();
    }

    private static string Ms(List<double> values, string format = "0.0") => values.Count == 0 ? "-" : $"{Measure.Median(values).ToString(format, System.Globalization.CultureInfo.InvariantCulture)} / {values.Max().ToString(format, System.Globalization.CultureInfo.InvariantCulture)} ms";

    private static string Ms(double value, string format = "0.0") => value.ToString(format, System.Globalization.CultureInfo.InvariantCulture) + " ms";

    private const string RouterHeader =
        "| router | deploy: command to 100% new (median / max) | of which the green set starting (median / max) | rollback: command to 100% new (median / max) | rollback: command to switch done (median / max) | requests | failed |\n" +
        "|---|---|---|---|---|---|---|";

    private static string RouterRow(string router, Result r)
    {
        var name = router switch
        {
            "builtin" => "builtin (Cutover's proxy)",
            "nginx" => "nginx (upstream file + reload)",
            _ => "haproxy (runtime API, no reload)",
        };
        return $"| {name} | {Ms(r.Deploy)} | {Ms(r.Green)} | {Ms(r.Rollback, "0.00")} | {Ms(r.RollbackCall, "0.00")} | {r.Requests} | {r.Failed} |";
    }

    private const string CliHeader =
        "| command (builtin, CLI + agent) | command to 100% new (median / max) | command done: whole process (median / max) | of which: start-up, parsing, config (median / max) | of which: pipeline, lock to history, without the agent (median / max) | of which: the agent's switch with its request (median / max) | requests | failed |\n" +
        "|---|---|---|---|---|---|---|---|";

    private static string[] CliRows(CliResult cli)
    {
        var rest = cli.RollbackDone.Zip(cli.RollbackPipeline, (done, pipeline) => done - pipeline).ToList();
        var pipelineOnly = cli.RollbackPipeline.Zip(cli.RollbackInstances, (pipeline, instances) => pipeline - instances).ToList();
        return
        [
            $"| `cutover deploy` | {Ms(cli.Switch.Deploy)} | {Ms(cli.DeployDone)} | | | | {cli.Switch.Requests} | {cli.Switch.Failed} |",
            $"| `cutover rollback` (to the warm set) | {Ms(cli.Switch.Rollback)} | {Ms(cli.RollbackDone)} | {Ms(rest)} | {Ms(pipelineOnly)} | {Ms(cli.RollbackInstances)} | | |",
        ];
    }

    /// <summary>Lines to the benchmark's output as they happen, each stamped with the time (a long run shows where it is).</summary>
    private sealed class Progress(TextWriter output)
    {
        private readonly Lock _gate = new();

        /// <summary>A progress line, stamped.</summary>
        public void Line(string text) => Write($"switch {DateTime.UtcNow:HH:mm:ss}Z {text}");

        /// <summary>Table header or rows as the README block has them, unstamped, so they can be pasted.</summary>
        public void Row(string text) => Write(text);

        private void Write(string text)
        {
            // The routers' measurements run concurrently: one write at a time, flushed, so a cut-off run keeps what it printed.
            lock (_gate)
            {
                output.WriteLine(text);
                output.Flush();
            }
        }
    }

    private sealed record Result(List<double> Deploy, List<double> Rollback, List<double> RollbackCall, List<double> Green, long Requests, long Failed);

    /// <summary>The CLI and agent end to end: the switch figures, plus per command the whole process and, for rollbacks, its parts.</summary>
    private sealed record CliResult(Result Switch, List<double> DeployDone, List<double> RollbackDone, List<double> RollbackPipeline, List<double> RollbackInstances);

    /// <summary>The benchmark's blue-green app: examples/node-app at 2 instances (ready: message), no monitor window.</summary>
    private static string BlueGreenConfig(string app, string root, int port) =>
        $"app: {app}\nstrategy: blue-green\nroot: {root}\nrun:\n  command: node server.js\n  instances: 2\n  ready: message\n" +
        $"proxy:\n  listen: 127.0.0.1:{port}\n  drain_timeout: 5s\nblue_green:\n  monitor: 0s\n";

    /// <summary>A build directory of examples/node-app whose VERSION file names <paramref name="version"/> (what its answers carry).</summary>
    private static string BuildNodeApp(string repo, string work, string version)
    {
        var dir = Path.Combine(work, "builds", version);
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(repo, "examples", "node-app", "server.js"), Path.Combine(dir, "server.js"), overwrite: true);
        File.WriteAllText(Path.Combine(dir, "VERSION"), version);
        return dir;
    }

    /// <summary>
    /// The product as users run it: `cutover deploy` and `cutover rollback` as processes of the published cutover (`dotnet
    /// publish`, as the startup benchmark publishes it: Native AOT, which runs rollback itself and hands deploy and the
    /// agent to its jit/ build) and the real agent, whose proxy takes the same load. "Done" is the whole command, from
    /// before the process starts to its exit. A rollback's own history line (started and finished, from the pipeline's
    /// start after the config is loaded to the history write, and its `instances` phase: the agent's switch with the
    /// request to it) splits that into the pipeline and the rest, which is process start-up, command parsing and config.
    /// </summary>
    private static async Task<CliResult> MeasureCliAsync(string repo, int switches, Progress report)
    {
        using var work = new ProxyBenchmark.TempWork();
        var home = Path.Combine(work.Path, "home");
        var port = Cutover.Platform.LoopbackPort.Free();
        var root = Path.Combine(work.Path, "root");
        var config = Path.Combine(work.Path, "cutover.yml");
        File.WriteAllText(config, BlueGreenConfig("swcli", root, port));
        string Build(string version) => BuildNodeApp(repo, work.Path, version);
        var (cutover, publishSeconds) = StartupBenchmark.PublishCutover(repo, Path.Combine(work.Path, "publish"));
        report.Line($"cli: published the native cutover in {publishSeconds:0} s");
        Task<double> TimedAsync(Load load, params string[] args) => Task.Run(() =>
        {
            var at = load.Now;
            ProxyBenchmark.RunPublishedCutover(cutover, home, [.. args, "-c", config]);
            return load.Now - at;
        });
        try
        {
            ProxyBenchmark.RunPublishedCutover(cutover, home, "deploy", Build("0"), "-c", config);
            await using var load = Load.Start($"http://127.0.0.1:{port}/");
            await Task.Delay(1000);
            var commands = new List<Command>();
            var (deployDone, rollbackDone, pipeline, instances) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
            for (var i = 1; i <= switches; i++)
            {
                var version = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                var build = Build(version);
                commands.Add(new Command(load.Now, version));
                deployDone.Add(await TimedAsync(load, "deploy", build));
                await Task.Delay(1500);
                // The rollback target is release 0 every time: each rolled-back release is no target any more.
                commands.Add(new Command(load.Now, "0", Rollback: true));
                rollbackDone.Add(await TimedAsync(load, "rollback"));
                using (var line = System.Text.Json.JsonDocument.Parse(File.ReadLines(Path.Combine(root, ".cutover", "history.jsonl")).Last()))
                {
                    var entry = line.RootElement;
                    pipeline.Add((entry.GetProperty("finished").GetDateTimeOffset() - entry.GetProperty("started").GetDateTimeOffset()).TotalMilliseconds);
                    instances.Add(entry.GetProperty("phase_seconds").GetProperty("instances").GetDouble() * 1000);
                }
                report.Line($"cli {i}/{switches}: deploy done in {Ms(deployDone[^1])}, rollback done in {Ms(rollbackDone[^1])} (pipeline {Ms(pipeline[^1])}, the agent's switch {Ms(instances[^1])})");
                await Task.Delay(1500);
            }
            var all = await load.StopAsync();
            var (deploy, rollback) = Settle(all, commands);
            return new CliResult(new Result(deploy, rollback, rollbackDone, [], all.Count, all.Count(s => !s.Ok)), deployDone, rollbackDone, pipeline, instances);
        }
        finally
        {
            if (File.Exists(Path.Combine(home, "agent.pid")) && int.TryParse(File.ReadAllText(Path.Combine(home, "agent.pid")).Trim(), out var agent))
            {
                Measure.Capture("kill", "-TERM", agent.ToString(System.Globalization.CultureInfo.InvariantCulture));
                for (var i = 0; i < 300 && Directory.Exists($"/proc/{agent}"); i++) Thread.Sleep(100);
            }
        }
    }

    /// <summary>A deploy or rollback issued at <paramref name="Ms"/> (on the load's clock) to the release answering "hello from <paramref name="Version"/>".</summary>
    private sealed record Command(double Ms, string Version, bool Rollback = false);

    /// <summary>
    /// For each command, the time from it to the end of the last answer from another release among the requests that
    /// started after it. Only requests that also ended before the next command count: one sent just before the next
    /// command but answered after it may come from that command's release (a rollback goes back to the very release the
    /// deploy replaced), which is no evidence that this command's switch was late.
    /// </summary>
    private static (List<double> Deploy, List<double> Rollback) Settle(IReadOnlyList<Sample> all, IReadOnlyList<Command> commands)
    {
        var deploy = new List<double>();
        var rollback = new List<double>();
        for (var c = 0; c < commands.Count; c++)
        {
            var (at, version, isRollback) = commands[c];
            var until = c + 1 < commands.Count ? commands[c + 1].Ms : double.MaxValue;
            var lastOld = all.Where(s => s.StartMs >= at && s.EndMs < until && s.Ok && s.Version != version).MaxBy(s => s.EndMs);
            (isRollback ? rollback : deploy).Add(lastOld is null ? 0 : lastOld.EndMs - at);
        }
        return (deploy, rollback);
    }

    /// <summary>How long the green set took to start and become ready (the switch's "green" phase).</summary>
    private sealed class GreenTiming : IDeployProgress
    {
        public double Green { get; private set; }
        public void PhaseStarted(string phase) { }
        public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) { if (phase == "green") Green = elapsed.TotalMilliseconds; }
        public void PhaseFailed(string phase, TimeSpan elapsed, string error) { }
        public void Output(string phase, string line) { }
        public void Info(string message) { }
        public void Warning(string message) { }
        public void Batch(string process, int number, int of, BatchStep step) { }
    }

    /// <summary>16 keep-alive clients sending GET / back to back, each answer recorded with its release ("hello from N").</summary>
    private sealed class Load : IAsyncDisposable
    {
        private const int Clients = 16;
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly CancellationTokenSource _stop = new(TimeSpan.FromMinutes(5));
        private readonly HttpClient _client = new(new SocketsHttpHandler { MaxConnectionsPerServer = Clients, UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };
        private readonly List<Sample>[] _samples = new List<Sample>[Clients];
        private Task[] _workers = [];

        public double Now => _clock.Elapsed.TotalMilliseconds;

        public static Load Start(string url)
        {
            var load = new Load();
            load._workers = Enumerable.Range(0, Clients).Select(w => Task.Run(async () =>
            {
                var mine = load._samples[w] = [];
                while (!load._stop.IsCancellationRequested)
                {
                    var start = load.Now;
                    try
                    {
                        var body = await load._client.GetStringAsync(url);
                        mine.Add(new Sample(start, load.Now, true, body.Split(' ')[2]));
                    }
                    catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
                    {
                        mine.Add(new Sample(start, load.Now, false, ""));
                    }
                }
            })).ToArray();
            return load;
        }

        public async Task<List<Sample>> StopAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_workers);
            return _samples.SelectMany(s => s).OrderBy(s => s.StartMs).ToList();
        }

        public async ValueTask DisposeAsync()
        {
            if (!_stop.IsCancellationRequested) await StopAsync();
            _client.Dispose();
            _stop.Dispose();
        }
    }

    /// <summary>Round-robin turns among the routers measured, once every one of them is set up.</summary>
    private sealed class Turns(int count)
    {
        private readonly SemaphoreSlim[] _gates = Enumerable.Range(0, count).Select(_ => new SemaphoreSlim(0, 1)).ToArray();
        private int _ready;

        /// <summary>Set up (or failed to): the first turn goes once all are.</summary>
        public void Ready()
        {
            if (Interlocked.Increment(ref _ready) == count) _gates[0].Release();
        }

        public Task WaitAsync(int who) => _gates[who].WaitAsync(TimeSpan.FromMinutes(5));

        public void Done(int who) => _gates[(who + 1) % count].Release();

        private int _finished;
        private readonly TaskCompletionSource _allFinished = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Its rounds are over; returns once everyone's are, so no teardown runs during another's round.</summary>
        public Task FinishedAsync()
        {
            if (Interlocked.Increment(ref _finished) == count) _allFinished.TrySetResult();
            return _allFinished.Task.WaitAsync(TimeSpan.FromMinutes(10));
        }
    }

    private static async Task<Result> MeasureAsync(string repo, string routerName, int switches, Turns turns, int who, Progress report)
    {
        var ready = false;
        void SetUp()
        {
            if (ready) return;
            ready = true;
            turns.Ready();
        }
        // A router that failed still passes its turns on, so the others finish.
        async Task PassTurnsAsync(int from)
        {
            SetUp();
            for (var i = from; i <= switches; i++)
            {
                await turns.WaitAsync(who);
                turns.Done(who);
            }
            await turns.FinishedAsync();
        }
        var round = 1;
        var holding = false;
        try
        {
            return await MeasureRoundsAsync();
        }
        catch
        {
            if (holding) turns.Done(who);
            await PassTurnsAsync(holding ? round + 1 : round);
            throw;
        }

        async Task<Result> MeasureRoundsAsync()
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
                    nginxProcess = Process.Start(ProxyBenchmark.Daemon("/usr/sbin/nginx", "-p", nginxDir, "-c", conf, "-g", "daemon off;"));
                    url = $"http://127.0.0.1:{nginxPort}/";
                    await Task.Delay(500);
                }
                if (haproxy)
                {
                    // Debian's haproxy 2.6, one process in the foreground, keep-alive both sides (HAProxy's default in http mode).
                    var haproxyConf = Path.Combine(work, "haproxy.cfg");
                    File.WriteAllText(haproxyConf, $"global\n  stats socket {haproxySocket} mode 600 level admin\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n" +
                                                   $"frontend web\n  bind 127.0.0.1:{nginxPort}\n  default_backend app\nbackend app\n  balance roundrobin\n");
                    haproxyProcess = Process.Start(ProxyBenchmark.Daemon("/usr/sbin/haproxy", "-db", "-q", "-f", haproxyConf));
                    for (var i = 0; i < 100 && !File.Exists(haproxySocket); i++) await Task.Delay(50);
                    if (await bg.RouteLiveSetAsync(CancellationToken.None) is { } routeError) throw new InvalidOperationException(routeError);
                    url = $"http://127.0.0.1:{nginxPort}/";
                    await Task.Delay(500);
                }

                var (deploy, rollback) = (new List<double>(), new List<double>());
                var rollbackCalls = new List<double>();
                var green = new List<double>();
                var (requests, failed) = (0L, 0L);
                SetUp();
                for (; round <= switches; round++)
                {
                    var i = round;
                    await turns.WaitAsync(who);
                    holding = true;
                    var commands = new List<Command>();
                    await using var load = Load.Start(url);
                    await Task.Delay(700);
                    var version = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    commands.Add(new Command(load.Now, version));
                    var timing = new GreenTiming();
                    if (await new BlueGreenSwitch(app, warmSet, timing).RunAsync($"r{i}", Release(version), CancellationToken.None) is { } e1) throw new InvalidOperationException(e1);
                    green.Add(timing.Green);
                    await Task.Delay(1500);
                    var warm = warmSet.Current!;
                    var rollbackAt = load.Now;
                    commands.Add(new Command(rollbackAt, warm.ReleaseId[1..], Rollback: true));
                    if (await bg.RunAsync(warm.ReleaseId, warm.ReleaseDir, CancellationToken.None) is { } e2) throw new InvalidOperationException(e2);
                    rollbackCalls.Add(load.Now - rollbackAt);
                    await Task.Delay(1500);
                    var all = await load.StopAsync();
                    var (deployed, rolledBack) = Settle(all, commands);
                    deploy.AddRange(deployed);
                    rollback.AddRange(rolledBack);
                    (requests, failed) = (requests + all.Count, failed + all.Count(s => !s.Ok));
                    report.Line($"{routerName} round {i}/{switches}: deploy to 100% new {Ms(deployed)} (green {Ms(timing.Green)}), rollback to 100% new {Ms(rolledBack, "0.00")} " +
                                $"(call {Ms(rollbackCalls[^1], "0.00")}); {all.Count} requests, {all.Count(s => !s.Ok)} failed");
                    holding = false;
                    turns.Done(who);
                }
                await turns.FinishedAsync();
                return new Result(deploy, rollback, rollbackCalls, green, requests, failed);
            }
            finally
            {
                if (nginxProcess is { HasExited: false }) { nginxProcess.Kill(entireProcessTree: true); nginxProcess.WaitForExit(); }
                if (haproxyProcess is { HasExited: false }) { haproxyProcess.Kill(entireProcessTree: true); haproxyProcess.WaitForExit(); }
                try { Directory.Delete(work, recursive: true); } catch (IOException) { }
            }
        }
    }

}
