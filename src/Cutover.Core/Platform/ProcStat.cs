using System.Globalization;

namespace Cutover.Platform;

/// <summary>The two fields of /proc/&lt;pid&gt;/stat that Cutover reads: the process group and the resident pages.</summary>
public readonly record struct ProcStat(int ProcessGroup, long RssBytes)
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
                long.Parse(fields[21], CultureInfo.InvariantCulture) * Environment.SystemPageSize);
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
