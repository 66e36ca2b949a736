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
}
