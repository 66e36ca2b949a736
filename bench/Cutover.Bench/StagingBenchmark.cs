using System.Globalization;
using System.Text;

namespace Cutover.Bench;

/// <summary>
/// Staging a 20,000-file, ~200 MB tree: the whole `cutover deploy` process against `rsync -a --delete --link-dest=PREV`
/// (metadata quick check) and `rsync -ac` (content check), same input, same run, in four cases: 1% changed with the
/// rest metadata-identical, or a fresh build (every mtime new, 1% of contents changed), each with and without a build
/// hook that writes a file in place. Also `cutover rollback` against the classic recipe's `ln -sfn`.
/// Writes the report to bench/results/ and the numbers into bench/README.md.
/// </summary>
public static class StagingBenchmark
{
    private const int Dirs = 200;
    private const int FilesPerDir = 100;

    public static async Task<int> RunAsync(string[] args, bool stagingOnly = false)
    {
        var runs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
        var repo = FindRepo();
        var work = Directory.CreateTempSubdirectory("cutover-bench-").FullName;
        try
        {
            return await RunInAsync(work, repo, runs, stagingOnly);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<int> RunInAsync(string work, string repo, int runs, bool stagingOnly)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "cutover.dll");
        var src = Path.Combine(work, "src");
        Console.WriteLine($"generating {Dirs * FilesPerDir} files in {src}");
        var bytes = Generate(src);
        Console.WriteLine($"  {bytes / 1e6:0.0} MB");

        // Staging as users run it: the whole `cutover deploy` process against rsync, per case, each run from a fresh
        // previous release made by each tool from the same tree.
        var cases = new List<CaseResult>();
        foreach (var fresh in new[] { false, true })
        foreach (var hook in new[] { false, true })
            cases.Add(RunCase(work, src, cli, runs, fresh, hook));
        var changed = Dirs * FilesPerDir / 100;

        // The whole commands a user runs: deploy (stage + shared + switch + prune + records) and rollback.
        var root = Path.Combine(work, "root");
        var config = Path.Combine(work, "cutover.yml");
        File.WriteAllText(config, $"app: bench\nroot: {root}\nkeep_releases: 3\n");
        Measure.Command("dotnet", cli, "deploy", src, "-c", config);
        var deployRuns = new List<Run>();
        var rollbackRuns = new List<Run>();
        var lnRuns = new List<Run>();
        for (var i = 0; i < runs; i++)
        {
            ChangeOnePercent(src, seed: 100 + i);
            deployRuns.Add(Measure.Command("dotnet", cli, "deploy", src, "-c", config));
            rollbackRuns.Add(Measure.Command("dotnet", cli, "rollback", "-c", config));
            var current = new FileInfo(Path.Combine(root, "current")).LinkTarget!;
            // The classic recipe's rollback: a shell and ln -sfn (Deployer's rollback.php).
            lnRuns.Add(Measure.Command("sh", "-c", $"cd {root} && ln -sfn {current} current"));
        }

        var report = Report(bytes, changed, runs, cases, deployRuns, rollbackRuns, lnRuns);
        Console.WriteLine(report);
        Directory.CreateDirectory(Path.Combine(repo, "bench", "results"));
        await File.WriteAllTextAsync(Path.Combine(repo, "bench", "results", "staging.md"), report);
        UpdateReadme(Path.Combine(repo, "bench", "README.md"), "staging", report);
        if (stagingOnly) return 0;

        Console.WriteLine("proxy overhead: direct, Cutover, nginx (wrk)");
        var proxy = await ProxyBenchmark.RunAsync(repo);
        Console.WriteLine(proxy);
        await File.WriteAllTextAsync(Path.Combine(repo, "bench", "results", "proxy.md"), proxy);
        UpdateReadme(Path.Combine(repo, "bench", "README.md"), "proxy", proxy);

        Console.WriteLine("blue-green switch and rollback latency: builtin vs nginx router");
        var switching = await SwitchBenchmark.RunAsync(repo, [], Console.Out);
        Console.WriteLine(switching);
        await File.WriteAllTextAsync(Path.Combine(repo, "bench", "results", "switch.md"), switching);
        UpdateReadme(Path.Combine(repo, "bench", "README.md"), "switch", switching);
        return 0;
    }

    /// <summary>One case of the staging table: medians of Cutover and the two rsync variants.</summary>
    private sealed record CaseResult(bool Fresh, bool Hook, double Cutover, double CutoverStage, long CutoverExtraKb, long CutoverRssKb,
        double Rsync, long RsyncExtraKb, double RsyncChecksum, long RsyncChecksumExtraKb, long RsyncRssKb,
        double CutoverCpu, double RsyncCpu, double RsyncChecksumCpu);

    /// <summary>The build hook of the "with a hook" rows: a write in place, the case hard links make dangerous.</summary>
    private const string HookFile = "pkg0/mod0/file0.php";

    private static CaseResult RunCase(string work, string src, string cli, int runs, bool fresh, bool hook)
    {
        var label = $"{(fresh ? "fresh build" : "1% changed")}{(hook ? " + build hook" : "")}";
        var cutover = new List<(Run Run, double Stage, long ExtraKb)>();
        var rsync = new List<(Run Run, long ExtraKb)>();
        var rsyncChecksum = new List<(Run Run, long ExtraKb)>();
        for (var i = 0; i < runs; i++)
        {
            var root = Path.Combine(work, "case-root");
            var config = Path.Combine(work, "case.yml");
            var prevRsync = Path.Combine(work, "case-prev-rsync");
            string Config(int keep) => $"app: bench\nroot: {root}\nkeep_releases: {keep}\n" + (hook ? $"hooks:\n  build: [\"echo x >> {HookFile}\"]\n" : "");
            // Steady state: the previous release was itself deployed over an earlier one that a prune then removed,
            // which moved the ctime of every shared file after the previous release's index was written, so the
            // timed deploy re-reads what it shares (the cost a real pipeline pays on each deploy).
            File.WriteAllText(config, Config(1));
            Measure.Command("dotnet", cli, "deploy", src, "-c", config);
            Measure.Command("dotnet", cli, "deploy", src, "-c", config);
            File.WriteAllText(config, Config(5));
            Measure.Command("rsync", "-a", "--delete", src + "/", prevRsync + "/");
            var prevCutover = Path.Combine(root, new FileInfo(Path.Combine(root, "current")).LinkTarget!);
            if (fresh) TouchAll(src, DateTime.UtcNow.AddMinutes(10 + i));
            ChangeOnePercent(src, seed: 1000 + i);

            var order = i % 2 == 0 ? new[] { 0, 1, 2 } : [2, 1, 0]; // neither always gets the warmer cache
            foreach (var who in order)
            {
                if (who == 0)
                {
                    var (run, stdout) = Measure.CommandWithOutput("dotnet", cli, "deploy", src, "-c", config, "--json");
                    var result = System.Text.Json.JsonDocument.Parse(stdout.Split('\n').Last(l => l.Length > 0)).RootElement;
                    var phases = result.GetProperty("phase_seconds");
                    var stage = new[] { "stage", "build", "dedupe" }.Sum(p => phases.TryGetProperty(p, out var v) ? v.GetDouble() : 0);
                    var current = Path.Combine(root, new FileInfo(Path.Combine(root, "current")).LinkTarget!);
                    cutover.Add((run, stage, Measure.ExtraDiskKb(prevCutover, current)));
                }
                else
                {
                    var dest = Path.Combine(work, $"case-new-rsync-{who}");
                    string[] flags = who == 1 ? ["-a"] : ["-ac"];
                    var script = $"rsync {flags[0]} --delete --link-dest={prevRsync} {src}/ {dest}/" + (hook ? $" && cd {dest} && echo x >> {HookFile}" : "");
                    var run = Measure.Command("sh", "-c", script);
                    (who == 1 ? rsync : rsyncChecksum).Add((run, Measure.ExtraDiskKb(prevRsync, dest)));
                    Directory.Delete(dest, recursive: true);
                }
            }
            Directory.Delete(root, recursive: true);
            Directory.Delete(prevRsync, recursive: true);
            Console.WriteLine($"{label}, run {i + 1}: cutover deploy {cutover[^1].Run.Seconds:0.000}s (stage {cutover[^1].Stage:0.000}s, +{cutover[^1].ExtraKb / 1024.0:0.0} MiB), " +
                              $"rsync -a {rsync[^1].Run.Seconds:0.000}s (+{rsync[^1].ExtraKb / 1024.0:0.0} MiB), rsync -ac {rsyncChecksum[^1].Run.Seconds:0.000}s (+{rsyncChecksum[^1].ExtraKb / 1024.0:0.0} MiB)");
        }
        static long MedianKb(IEnumerable<long> values) => (long)Measure.Median(values.Select(v => (double)v));
        return new CaseResult(fresh, hook,
            Measure.Median(cutover.Select(c => c.Run.Seconds)), Measure.Median(cutover.Select(c => c.Stage)), MedianKb(cutover.Select(c => c.ExtraKb)),
            MedianKb(cutover.Select(c => c.Run.MaxRssKb)),
            Measure.Median(rsync.Select(r => r.Run.Seconds)), MedianKb(rsync.Select(r => r.ExtraKb)),
            Measure.Median(rsyncChecksum.Select(r => r.Run.Seconds)), MedianKb(rsyncChecksum.Select(r => r.ExtraKb)),
            MedianKb(rsync.Concat(rsyncChecksum).Select(r => r.Run.MaxRssKb)),
            Measure.Median(cutover.Select(c => c.Run.CpuSeconds)), Measure.Median(rsync.Select(r => r.Run.CpuSeconds)), Measure.Median(rsyncChecksum.Select(r => r.Run.CpuSeconds)));
    }

    private static void TouchAll(string root, DateTime mtime)
    {
        foreach (var file in Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories))
            File.SetLastWriteTimeUtc(file, mtime);
    }

    private static string Report(long bytes, int changed, int runs, List<CaseResult> cases, List<Run> deploy, List<Run> rollback, List<Run> ln)
    {
        var d = Measure.Median(deploy.Select(x => x.Seconds));
        var rb = Measure.Median(rollback.Select(x => x.Seconds));
        var l = Measure.Median(ln.Select(x => x.Seconds));
        static string MiB(long kb) => $"{kb / 1024.0:0.0} MiB";
        var sb = new StringBuilder();
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores (1-minute load average {load} at the end), {Dirs * FilesPerDir} files, {bytes / 1e6:0} MB, {changed} changed (1%), median of {runs} runs, warm page cache, each tool a whole process (time includes the hook in the hook rows; CPU is user + system).");
        sb.AppendLine();
        sb.AppendLine("| case | `cutover deploy` (whole command) | of it: stage + build + dedupe | rsync -a --link-dest | rsync -ac --link-dest | Cutover / faster rsync | CPU: Cutover | rsync -a | rsync -ac | extra disk: Cutover | rsync -a | rsync -ac | peak RSS: Cutover | rsync |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var c in cases)
        {
            var label = (c.Fresh ? "fresh build (every mtime new)" : "1% changed, rest metadata-identical") + (c.Hook ? ", build hook" : "");
            sb.AppendLine($"| {label} | {c.Cutover:0.000} s | {c.CutoverStage:0.000} s | {c.Rsync:0.000} s | {c.RsyncChecksum:0.000} s | {c.Cutover / Math.Min(c.Rsync, c.RsyncChecksum):0.00} | " +
                          $"{c.CutoverCpu:0.00} s | {c.RsyncCpu:0.00} s | {c.RsyncChecksumCpu:0.00} s | " +
                          $"{MiB(c.CutoverExtraKb)} | {MiB(c.RsyncExtraKb)} | {MiB(c.RsyncChecksumExtraKb)} | {MiB(c.CutoverRssKb)} | {MiB(c.RsyncRssKb)} |");
        }
        sb.AppendLine();
        sb.AppendLine("| what | Cutover | peer | peer | Cutover / peer |");
        sb.AppendLine("|---|---|---|---|---|");
        sb.AppendLine($"| rollback, whole command | {rb * 1000:0} ms | sh -c 'ln -sfn' (classic recipe) | {l * 1000:0} ms | {rb / l:0.0} |");
        sb.AppendLine($"| deploy, whole command, 1% changed (stage, shared, switch, prune, records) | {d:0.000} s | | | |");
        return sb.ToString();
    }

    internal static void UpdateReadme(string readme, string section, string report)
    {
        string begin = $"<!-- {section}:begin -->", end = $"<!-- {section}:end -->";
        if (!File.Exists(readme)) return;
        var text = File.ReadAllText(readme);
        var a = text.IndexOf(begin, StringComparison.Ordinal);
        var b = text.IndexOf(end, StringComparison.Ordinal);
        if (a < 0 || b < a) return;
        File.WriteAllText(readme, text[..(a + begin.Length)] + "\n" + report + text[b..]);
    }

    /// <summary>A tree like a PHP app with vendor/: 200 dirs of 100 files, 2 to 19 KB each, fixed seed.</summary>
    private static long Generate(string root)
    {
        var random = new Random(42);
        long total = 0;
        var buffer = new byte[20 * 1024];
        for (var d = 0; d < Dirs; d++)
        {
            var dir = Path.Combine(root, $"pkg{d / 20}", $"mod{d}");
            Directory.CreateDirectory(dir);
            for (var f = 0; f < FilesPerDir; f++)
            {
                var size = random.Next(2 * 1024, 19 * 1024);
                random.NextBytes(buffer.AsSpan(0, size));
                File.WriteAllBytes(Path.Combine(dir, $"file{f}.php"), buffer[..size]);
                total += size;
            }
        }
        return total;
    }

    private static int ChangeOnePercent(string root, int seed = 7)
    {
        var random = new Random(seed);
        var files = Directory.GetFiles(root, "*", SearchOption.AllDirectories).Order().ToArray();
        var count = files.Length / 100;
        foreach (var file in files.OrderBy(_ => random.Next()).Take(count))
        {
            var bytes = File.ReadAllBytes(file);
            bytes[0] ^= 0xFF;
            File.WriteAllBytes(file, bytes);
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddSeconds(seed));
        }
        return count;
    }

    internal static string FindRepo()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Cutover.slnx"))) return dir.FullName;
        return Directory.GetCurrentDirectory();
    }
}
