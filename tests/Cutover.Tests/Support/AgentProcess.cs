namespace Cutover.Tests.Support;

/// <summary>The agent a test started (through the CLI) in its CUTOVER_HOME, stopped by the pid it wrote.</summary>
public static class AgentProcess
{
    /// <summary>
    /// Signals the agent and waits up to 30 s for it to exit. After SIGKILL the pid file is removed and the
    /// instances it left running in their own sessions are killed by process group, since the test owns them.
    /// </summary>
    public static void Stop(string home, int signal)
    {
        var pidFile = Path.Combine(home, "agent.pid");
        if (!File.Exists(pidFile)) return;
        var pid = int.Parse(File.ReadAllText(pidFile));
        Cutover.Platform.LibC.Kill(pid, signal);
        Wait.Within(() => !Cutover.Platform.LibC.Kill(pid, 0), TimeSpan.FromSeconds(30));
        if (signal != 9) return;
        File.Delete(pidFile);
        var state = Path.Combine(home, "state.json");
        foreach (var line in File.Exists(state) ? File.ReadAllLines(state) : [])
        {
            var trimmed = line.Trim();
            if (trimmed.StartsWith("\"pid\":") && int.TryParse(trimmed[6..].Trim(' ', ','), out var child))
                Cutover.Platform.LibC.Kill(-child, 9);
        }
    }
}
