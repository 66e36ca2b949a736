namespace Cutover.Tests.Support;

/// <summary>
/// The last line of cleanup for tests that start agents: every process whose environment names the test's
/// CUTOVER_HOME belongs to the test (the agent and the instances it started inherit it), whatever happened to
/// the pid file. Killed with SIGKILL, so no test leaves an agent behind on a slow machine.
/// </summary>
public static class OwnedProcesses
{
    public static int KillByEnvironment(string name, string value)
    {
        var needle = $"{name}={value}";
        var killed = 0;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId) continue;
            try
            {
                var environ = File.ReadAllText(Path.Combine(dir, "environ"));
                if (!environ.Split('\0').Contains(needle)) continue;
                Cutover.Platform.LibC.Kill(pid, 9);
                killed++;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone meanwhile, or not ours to read
            }
        }
        return killed;
    }

    /// <summary>
    /// Processes (besides this one and sshd's) whose command line mentions <paramref name="text"/>: a host's directory,
    /// or a marker a test put into a command (a sleep of an unusual length) to find what it started.
    /// </summary>
    public static IReadOnlyList<int> Mentioning(string text)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid) || pid == Environment.ProcessId) continue;
            try
            {
                var cmdline = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmdline.Contains(text, StringComparison.Ordinal) && !cmdline.StartsWith("/usr/sbin/sshd", StringComparison.Ordinal)
                    && !cmdline.StartsWith("sshd", StringComparison.Ordinal)) found.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // gone meanwhile, or not ours to read
            }
        }
        return found;
    }
}
