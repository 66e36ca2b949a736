namespace Cutover.Agent;

/// <summary>CUTOVER_HOME (default ~/.cutover): the agent's control socket, state, logs and runtime files.</summary>
public sealed record AgentHome(string Path)
{
    public string Socket => System.IO.Path.Combine(Path, "agent.sock");
    public string State => System.IO.Path.Combine(Path, "state.json");
    public string AgentLog => System.IO.Path.Combine(Path, "agent.log");
    /// <summary>The background agent's stdout and stderr: empty unless the runtime itself printed something (a crash).</summary>
    public string AgentStderr => System.IO.Path.Combine(Path, "agent.stderr.log");
    public string AgentPid => System.IO.Path.Combine(Path, "agent.pid");
    /// <summary>flock'd by the one agent of this home (<see cref="AgentHomeLock"/>); holds its pid.</summary>
    public string Lock => System.IO.Path.Combine(Path, "agent.lock");
    public string Logs => System.IO.Path.Combine(Path, "logs");
    public string AppLogs(string app) => System.IO.Path.Combine(Logs, app);

    public static AgentHome FromEnvironment()
    {
        var path = Environment.GetEnvironmentVariable("CUTOVER_HOME");
        if (string.IsNullOrEmpty(path))
            path = System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cutover");
        return new AgentHome(System.IO.Path.GetFullPath(path));
    }
}
