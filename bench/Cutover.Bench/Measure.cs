using System.Diagnostics;
using System.Globalization;

namespace Cutover.Bench;

/// <summary>Wall time, peak memory, and CPU time (user + system), which a busy machine distorts less than wall time.</summary>
public sealed record Run(double Seconds, long MaxRssKb, double CpuSeconds = 0);

/// <summary>Runs a command under GNU time, for wall time and peak memory of the whole process.</summary>
public static class Measure
{
    public static Run Command(string file, params string[] args) => CommandExiting([0], file, args);

    /// <summary>A command that must exit 0, with what it wrote to stdout (a --json result, say).</summary>
    public static (Run Run, string Stdout) CommandWithOutput(string file, params string[] args)
    {
        string? stdout = null;
        var run = CommandExiting([0], file, args, text => stdout = text);
        return (run, stdout!);
    }

    /// <summary>For tools whose exit code reports findings (linters exit 1 when they find something).</summary>
    public static Run CommandExiting(int[] okExitCodes, string file, params string[] args) => CommandExiting(okExitCodes, file, args, null);

    /// <summary>A command that must exit 0, run with <paramref name="environment"/> added to this process's.</summary>
    public static Run CommandWith(IReadOnlyDictionary<string, string> environment, string file, params string[] args) =>
        CommandExiting([0], file, args, null, environment);

    private static Run CommandExiting(int[] okExitCodes, string file, string[] args, Action<string>? onStdout, IReadOnlyDictionary<string, string>? environment = null)
    {
        var output = Path.GetTempFileName();
        var start = new ProcessStartInfo("/usr/bin/time") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-f", "%e %M %U %S", "-o", output, file }.Concat(args)) start.ArgumentList.Add(a);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) start.Environment[key] = value;
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        var seconds = clock.Elapsed.TotalSeconds;
        if (!okExitCodes.Contains(process.ExitCode))
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited {process.ExitCode}: {stderr} {stdout.Result}");
        onStdout?.Invoke(stdout.Result);
        // The last line: GNU time prefixes "Command exited with non-zero status" on a line of its own.
        var parts = File.ReadAllText(output).Trim().Split('\n')[^1].Split(' ');
        File.Delete(output);
        return new Run(seconds, long.Parse(parts[1], CultureInfo.InvariantCulture),
            double.Parse(parts[2], CultureInfo.InvariantCulture) + double.Parse(parts[3], CultureInfo.InvariantCulture));
    }

    public static string Capture(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} failed: {process.StandardError.ReadToEnd()}");
        return text;
    }

    /// <summary>Disk that <paramref name="added"/> uses beyond <paramref name="existing"/>: du counts each inode once.</summary>
    public static long ExtraDiskKb(string existing, string added)
    {
        var lines = Capture("du", "-sk", existing, added).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return long.Parse(lines[1].Split('\t')[0], CultureInfo.InvariantCulture);
    }

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}
