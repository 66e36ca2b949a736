using System.Globalization;
using System.Text;

namespace Cutover.Bench;

/// <summary>
/// Staging a 20,000-file, ~200 MB tree with 1% of files changed: Cutover's stager against
/// `rsync -a --delete --link-dest=PREV`, same input, same run, each as a whole process. Also the whole
/// `cutover deploy` and `cutover rollback` commands, the latter against the classic recipe's `ln -sfn`.
/// Writes the report to bench/results/ and the numbers into bench/README.md.
/// </summary>
public static class StagingBenchmark
{
    private const int Dirs = 200;
    private const int FilesPerDir = 100;

    public static async Task<int> RunAsync(string[] args)
    {
        var runs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
        var repo = FindRepo();
        var work = Directory.CreateTempSubdirectory("cutover-bench-").FullName;
        try
        {
            return await RunInAsync(work, repo, runs);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<int> RunInAsync(string work, string repo, int runs)
    {
        var self = Environment.ProcessPath!;
        var selfDll = Path.Combine(AppContext.BaseDirectory, "Cutover.Bench.dll");
        var cli = Path.Combine(AppContext.BaseDirectory, "cutover.dll");
        var src = Path.Combine(work, "src");
        Console.WriteLine($"generating {Dirs * FilesPerDir} files in {src}");
        var bytes = Generate(src);
        Console.WriteLine($"  {bytes / 1e6:0.0} MB");

        // The previous release, made by each tool from the same input.
        var prevCutover = Path.Combine(work, "prev-cutover");
        var prevRsync = Path.Combine(work, "prev-rsync");
        Measure.Command("dotnet", selfDll, "stage", src, prevCutover);
        Measure.Command("rsync", "-a", "--delete", src + "/", prevRsync + "/");
        var changed = ChangeOnePercent(src);
        Console.WriteLine($"changed {changed} files (1%)");

        var cutoverRuns = new List<Run>();
        var rsyncRuns = new List<Run>();
        long cutoverExtra = 0, rsyncExtra = 0;
        for (var i = 0; i < runs; i++)
        {
            var destC = Path.Combine(work, $"new-cutover-{i}");
            var destR = Path.Combine(work, $"new-rsync-{i}");
            // Alternate who goes first so neither always gets the warmer cache.
            if (i % 2 == 0)
            {
                cutoverRuns.Add(Measure.Command("dotnet", selfDll, "stage", src, destC, prevCutover));
                rsyncRuns.Add(Measure.Command("rsync", "-a", "--delete", $"--link-dest={prevRsync}", src + "/", destR + "/"));
            }
            else
            {
                rsyncRuns.Add(Measure.Command("rsync", "-a", "--delete", $"--link-dest={prevRsync}", src + "/", destR + "/"));
                cutoverRuns.Add(Measure.Command("dotnet", selfDll, "stage", src, destC, prevCutover));
            }
            cutoverExtra = Measure.ExtraDiskKb(prevCutover, destC);
            rsyncExtra = Measure.ExtraDiskKb(prevRsync, destR);
            Directory.Delete(destC, recursive: true);
            Directory.Delete(destR, recursive: true);
            Console.WriteLine($"run {i + 1}: cutover {cutoverRuns[^1].Seconds:0.000}s, rsync {rsyncRuns[^1].Seconds:0.000}s");
        }

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

        var report = Report(bytes, changed, runs, cutoverRuns, rsyncRuns, cutoverExtra, rsyncExtra, deployRuns, rollbackRuns, lnRuns);
        Console.WriteLine(report);
        Directory.CreateDirectory(Path.Combine(repo, "bench", "results"));
        await File.WriteAllTextAsync(Path.Combine(repo, "bench", "results", "staging.md"), report);
        UpdateReadme(Path.Combine(repo, "bench", "README.md"), "staging", report);

        Console.WriteLine("proxy overhead: direct, Cutover, nginx (wrk)");
        var proxy = await ProxyBenchmark.RunAsync(repo);
        Console.WriteLine(proxy);
        await File.WriteAllTextAsync(Path.Combine(repo, "bench", "results", "proxy.md"), proxy);
        UpdateReadme(Path.Combine(repo, "bench", "README.md"), "proxy", proxy);

        Console.WriteLine("blue-green switch and rollback latency: builtin vs nginx router");
        var switching = await SwitchBenchmark.RunAsync(repo);
        Console.WriteLine(switching);
        await File.WriteAllTextAsync(Path.Combine(repo, "bench", "results", "switch.md"), switching);
        UpdateReadme(Path.Combine(repo, "bench", "README.md"), "switch", switching);
        return 0;
    }

    private static string Report(long bytes, int changed, int runs, List<Run> cutover, List<Run> rsync, long cutoverExtra, long rsyncExtra,
        List<Run> deploy, List<Run> rollback, List<Run> ln)
    {
        var c = Measure.Median(cutover.Select(r => r.Seconds));
        var r = Measure.Median(rsync.Select(x => x.Seconds));
        var cm = Measure.Median(cutover.Select(x => (double)x.MaxRssKb));
        var rm = Measure.Median(rsync.Select(x => (double)x.MaxRssKb));
        var d = Measure.Median(deploy.Select(x => x.Seconds));
        var rb = Measure.Median(rollback.Select(x => x.Seconds));
        var l = Measure.Median(ln.Select(x => x.Seconds));
        var sb = new StringBuilder();
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores, {Dirs * FilesPerDir} files, {bytes / 1e6:0} MB, {changed} changed (1%), median of {runs} runs, warm page cache, each tool a whole process.");
        sb.AppendLine();
        sb.AppendLine("| what | Cutover | peer | peer | Cutover / peer |");
        sb.AppendLine("|---|---|---|---|---|");
        sb.AppendLine($"| stage the new release (time) | {c:0.000} s | rsync -a --delete --link-dest | {r:0.000} s | {c / r:0.00} |");
        sb.AppendLine($"| extra disk for the new release (du) | {cutoverExtra / 1024.0:0.0} MiB | rsync | {rsyncExtra / 1024.0:0.0} MiB | {(double)cutoverExtra / Math.Max(1, rsyncExtra):0.00} |");
        sb.AppendLine($"| peak memory (RSS) | {cm / 1024:0.0} MiB | rsync (all its processes' max) | {rm / 1024:0.0} MiB | {cm / rm:0.00} |");
        sb.AppendLine($"| rollback, whole command | {rb * 1000:0} ms | sh -c 'ln -sfn' (classic recipe) | {l * 1000:0} ms | {rb / l:0.0} |");
        sb.AppendLine($"| deploy, whole command (stage, shared, switch, prune, records) | {d:0.000} s | rsync stage alone | {r:0.000} s | {d / r:0.00} |");
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
