using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Cutover.Bench;

/// <summary>
/// Issue 14, "commands that answer at once": whole-process wall time of the everyday commands, median of RUNS each, for
/// the builds people run (`dotnet publish`: the Native AOT cutover; the fleet build, native with a self-contained single-file
/// JIT build in jit/, that fleet deploys install) and the ReadyToRun build the native one replaced, against PM2's `pm2 ls` and `pm2 reload` of a 2-process app and the classic recipe's `ln -sfn` +
/// `mv -T`. The goal is a median under 100 ms. Each build is published here as its install line says, and the
/// publish is timed too (what the build costs).
/// </summary>
public static class StartupBenchmark
{
    private const double GoalMs = 100;

    private sealed record Build(string Name, string Cutover, double PublishSeconds);

    private sealed record Row(string Command, Dictionary<string, Run> ByBuild, string? Peer, Run? PeerRun);

    public static int Run(string[] args)
    {
        var runs = args is [var r, ..] && int.TryParse(r, out var parsed) ? parsed : 20;
        var repo = Directory.GetCurrentDirectory();
        var pm2 = Path.Combine(repo, "bench", ".tools", "node_modules", ".bin", "pm2");
        if (!File.Exists(pm2)) throw new InvalidOperationException($"{pm2} is missing: bench/run.sh installs pm2 (npm install --prefix bench/.tools pm2)");
        using var work = new ProxyBenchmark.TempWork();
        Build[] builds =
        [
            // README's install line: the Native AOT cutover, with the JIT build it hands other commands to in jit/.
            Publish(repo, work.Path, "native (`dotnet publish`)", "native", []),
            // The build before it, for the comparison: framework-dependent ReadyToRun.
            Publish(repo, work.Path, "ReadyToRun (`-p:PublishAot=false`)", "r2r", ["-p:PublishAot=false"]),
            // What fleet deploys install: the native cutover with a self-contained single-file JIT build in jit/.
            Publish(repo, work.Path, "fleet build (native + self-contained jit/)", "sf", ["-r", "linux-x64", "--self-contained", "-p:PublishSingleFile=true"]),
        ];

        var rows = new List<Row>();
        void Add(string command, Func<Build, Run> cutover, string? peer = null, Func<Run>? peerRun = null) =>
            rows.Add(new Row(command, builds.ToDictionary(b => b.Name, cutover), peer, peerRun?.Invoke()));

        var symlink = SymlinkApp(work.Path);
        using var blueGreen = new BlueGreenApp(repo, work.Path);
        using var pm2App = new Pm2App(pm2, repo, work.Path);

        Add("cutover --version", b => Median(runs, () => Measure.Command(b.Cutover, "--version")), "pm2 --version", () => Median(runs, () => pm2App.Run("--version")));
        Add("cutover probe --help", b => Median(runs, () => Measure.Command(b.Cutover, "probe", "--help")));
        foreach (var b in builds) Measure.Command(b.Cutover, "deploy", symlink.Source, "-c", symlink.Config);
        Add("cutover status (symlink)", b => Median(runs, () => Measure.Command(b.Cutover, "status", "-c", symlink.Config)), "pm2 ls", () => Median(runs, () => pm2App.Run("ls")));
        Add("cutover releases (symlink)", b => Median(runs, () => Measure.Command(b.Cutover, "releases", "-c", symlink.Config)), "pm2 ls", () => Median(runs, () => pm2App.Run("ls")));
        // A rollback needs a release to go back to: each timed rollback follows an untimed deploy.
        Add("cutover rollback (symlink)", b => Median(runs, () =>
        {
            Measure.Command(b.Cutover, "deploy", symlink.Source, "-c", symlink.Config);
            return Measure.Command(b.Cutover, "rollback", "-c", symlink.Config);
        }), "ln -sfn + mv -T", () => Median(runs, () => Measure.Command("sh", "-c", $"cd {work.Path} && ln -sfn {symlink.Source} classic.tmp && mv -T classic.tmp classic-current")));
        Add("cutover status (blue-green, agent)", b => Median(runs, () => blueGreen.Run(b, "status")), "pm2 ls", () => Median(runs, () => pm2App.Run("ls")));
        Add("cutover rollback (blue-green, agent)", b => Median(runs, () =>
        {
            blueGreen.Run(b, "deploy", blueGreen.NextSource());
            return blueGreen.Run(b, "rollback");
        }), "pm2 reload (2 processes)", () => Median(runs, () => pm2App.Run("reload", "app")));

        var report = Report(runs, builds, rows);
        Directory.CreateDirectory(Path.Combine(repo, "bench", "results"));
        File.WriteAllText(Path.Combine(repo, "bench", "results", "startup.md"), report);
        StagingBenchmark.UpdateReadme(Path.Combine(repo, "bench", "README.md"), "startup", report);
        Console.WriteLine(report);
        return 0;
    }

    /// <summary>The run with the median wall time (its CPU and RSS beside it).</summary>
    private static Run Median(int runs, Func<Run> measure)
    {
        var all = Enumerable.Range(0, runs).Select(_ => measure()).OrderBy(r => r.Seconds).ToList();
        var median = Measure.Median(all.Select(r => r.Seconds));
        return new Run(median, all[all.Count / 2].MaxRssKb, Measure.Median(all.Select(r => r.CpuSeconds)));
    }

    private static Build Publish(string repo, string work, string name, string dir, string[] extra)
    {
        var (cutover, seconds) = PublishCutover(repo, Path.Combine(work, dir), extra);
        return new Build(name, cutover, seconds);
    }

    /// <summary>`dotnet publish src/Cutover -c Release` (plus <paramref name="extra"/>) into <paramref name="output"/>: the published cutover and the publish's seconds.</summary>
    internal static (string Cutover, double Seconds) PublishCutover(string repo, string output, params string[] extra)
    {
        var clock = Stopwatch.StartNew();
        Measure.Capture("dotnet", ["publish", Path.Combine(repo, "src", "Cutover"), "-c", "Release", "-o", output, "-nologo", "-v", "q", .. extra]);
        return (Path.Combine(output, "cutover"), clock.Elapsed.TotalSeconds);
    }

    private sealed record SymlinkRoot(string Config, string Source, string Root);

    private static SymlinkRoot SymlinkApp(string work)
    {
        var source = Path.Combine(work, "symlink-src");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "index.html"), "hello\n");
        var root = Path.Combine(work, "symlink-root");
        var config = Path.Combine(work, "symlink.yml");
        File.WriteAllText(config, $"app: startup\nroot: {root}\nkeep_releases: 5\n");
        return new SymlinkRoot(config, source, root);
    }

    /// <summary>examples/node-app at 2 instances, blue-green behind the agent's proxy, in a CUTOVER_HOME of its own.</summary>
    private sealed class BlueGreenApp : IDisposable
    {
        private readonly string _home;
        private readonly string _config;
        private readonly string[] _sources;
        private int _next;

        public BlueGreenApp(string repo, string work)
        {
            _home = Path.Combine(work, "bg-home");
            _config = Path.Combine(work, "bg.yml");
            _sources = new[] { "v1", "v2" }.Select(v =>
            {
                var dir = Path.Combine(work, "bg-" + v);
                Directory.CreateDirectory(dir);
                File.Copy(Path.Combine(repo, "examples", "node-app", "server.js"), Path.Combine(dir, "server.js"));
                File.WriteAllText(Path.Combine(dir, "VERSION"), v);
                return dir;
            }).ToArray();
            File.WriteAllText(_config, $"app: startupbg\nstrategy: blue-green\nroot: {Path.Combine(work, "bg-root")}\nkeep_releases: 5\n" +
                                       "run:\n  command: node server.js\n  instances: 2\n  ready: message\n" +
                                       $"proxy:\n  listen: 127.0.0.1:{Cutover.Platform.LoopbackPort.Free()}\n  drain_timeout: 1s\nblue_green:\n  monitor: 0s\n");
        }

        public string NextSource() => _sources[_next++ % _sources.Length];

        public Run Run(Build build, params string[] args)
        {
            // No metrics listener: its default port is one per machine, and another agent (another engineer's, a test's) may hold it.
            var environment = new Dictionary<string, string> { ["CUTOVER_HOME"] = _home, ["CUTOVER_METRICS_LISTEN"] = "off" };
            // The first use deploys twice, so there is always a release to roll back to.
            if (_next == 0)
                for (var i = 0; i < 2; i++) Measure.CommandWith(environment, build.Cutover, "deploy", NextSource(), "-c", _config);
            return Measure.CommandWith(environment, build.Cutover, [.. args, "-c", _config]);
        }

        /// <summary>SIGTERM to the agent by its pid file: it drains and stops the instances and exits.</summary>
        public void Dispose()
        {
            var pidFile = Path.Combine(_home, "agent.pid");
            if (!File.Exists(pidFile)) return;
            var pid = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);
            Measure.Capture("kill", "-TERM", pid.ToString(CultureInfo.InvariantCulture));
            for (var i = 0; i < 100 && Directory.Exists($"/proc/{pid}"); i++) Thread.Sleep(100);
        }
    }

    /// <summary>The same Node app under PM2 in cluster mode at 2 processes, with a PM2_HOME of its own.</summary>
    private sealed class Pm2App : IDisposable
    {
        private readonly string _pm2;
        private readonly Dictionary<string, string> _environment;

        public Pm2App(string pm2, string repo, string work)
        {
            _pm2 = pm2;
            _environment = new() { ["PM2_HOME"] = Path.Combine(work, "pm2-home"), ["PORT"] = Cutover.Platform.LoopbackPort.Free().ToString(CultureInfo.InvariantCulture) };
            var app = Path.Combine(work, "pm2-app");
            Directory.CreateDirectory(app);
            File.Copy(Path.Combine(repo, "examples", "node-app", "server.js"), Path.Combine(app, "server.js"));
            File.WriteAllText(Path.Combine(app, "VERSION"), "pm2");
            // --wait-ready: like Cutover's `ready: message`, a process counts once it sent 'ready'; reload waits for it too.
            Measure.CommandWith(_environment, _pm2, "start", Path.Combine(app, "server.js"), "--name", "app", "-i", "2", "--wait-ready");
        }

        public Run Run(params string[] args) => Measure.CommandWith(_environment, _pm2, args);

        /// <summary>`pm2 kill` stops the app's processes and PM2's daemon.</summary>
        public void Dispose() => Measure.CommandWith(_environment, _pm2, "kill");
    }

    private static string Report(int runs, Build[] builds, List<Row> rows)
    {
        var load = File.ReadAllText("/proc/loadavg").Split(' ')[0];
        var sb = new StringBuilder();
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores (1-minute load average {load} at the end), median of {runs} whole-process runs each (wall; CPU = user + system); goal: under {GoalMs:0} ms.");
        sb.AppendLine();
        sb.Append("| command |");
        foreach (var b in builds) sb.Append($" {b.Name} | CPU |");
        sb.AppendLine(" peer | peer time | Cutover / peer |");
        sb.Append("|---|");
        foreach (var _ in builds) sb.Append("---|---|");
        sb.AppendLine("---|---|---|");
        foreach (var row in rows)
        {
            sb.Append($"| `{row.Command}` |");
            foreach (var b in builds)
            {
                var run = row.ByBuild[b.Name];
                sb.Append($" {Ms(run.Seconds)}{(run.Seconds * 1000 < GoalMs ? "" : " ✗")} | {Ms(run.CpuSeconds)} |");
            }
            if (row.PeerRun is { } peer)
                sb.AppendLine($" `{row.Peer}` | {Ms(peer.Seconds)} | {string.Join(" / ", builds.Select(b => (row.ByBuild[b.Name].Seconds / peer.Seconds).ToString("0.00", CultureInfo.InvariantCulture)))} |");
            else
                sb.AppendLine(" - | - | - |");
        }
        sb.AppendLine();
        sb.AppendLine($"Publish time (what each build costs, on this machine as loaded): {string.Join("; ", builds.Select(b => $"{b.Name} {b.PublishSeconds:0} s"))}. Ratios list the builds in column order; ✗ marks a median over the goal.");
        return sb.ToString();
    }

    private static string Ms(double seconds) => $"{seconds * 1000:0} ms";
}
