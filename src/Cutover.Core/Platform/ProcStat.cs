using System.Globalization;

namespace Cutover.Platform;

/// <summary>
/// The fields of /proc/&lt;pid&gt;/stat that Cutover reads: the process group, the resident pages, and the start
/// time (clock ticks since boot), which with the pid names one process for good: a reused pid has another; and the
/// CPU time it used (utime + stime, in clock ticks: <see cref="LibC.ClockTicksPerSecond"/>), for the metrics.
/// </summary>
public readonly record struct ProcStat(int ProcessGroup, long RssBytes, long StartTicks, long CpuTicks = 0)
{
    /// <summary>Null when the process is gone (or never was).</summary>
    public static ProcStat? Read(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The command name may hold spaces and parentheses; the fields after the last ')' are fixed.
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return new ProcStat(
                int.Parse(fields[2], CultureInfo.InvariantCulture),
                long.Parse(fields[21], CultureInfo.InvariantCulture) * Environment.SystemPageSize,
                long.Parse(fields[19], CultureInfo.InvariantCulture),
                long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture));
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>Every process id in /proc.</summary>
    public static IEnumerable<int> AllPids()
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), out var pid)) yield return pid;
    }
}
