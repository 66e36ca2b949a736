using Cutover.Platform;
using Cutover.Supervisor;

namespace Cutover.Agent;

/// <summary>
/// What a killed agent left running: instance processes (setsid'd groups) it can no longer supervise, since their
/// pipes died with it. A restarted agent ends them all before it starts anything. Two ways to find them, so neither a
/// reused pid nor a process started a moment before the state was written is missed: every group leader whose
/// environment names this agent home (CUTOVER_AGENT_HOME, set on every instance), and every pid the state recorded
/// whose start time still matches (so a pid the kernel gave to someone else since is left alone).
/// </summary>
public static class OrphanInstances
{
    private const int SigKill = 9;

    /// <summary>Kills the process group of every orphan; returns one line per group killed, for agent.log.</summary>
    public static async Task<IReadOnlyList<string>> StopAllAsync(AgentHome home, IEnumerable<InstanceRecord> recorded, CancellationToken cancellationToken)
    {
        var groups = new Dictionary<int, string>();
        var self = ProcStat.Read(Environment.ProcessId)?.ProcessGroup;
        foreach (var pid in ProcStat.AllPids())
        {
            if (pid == Environment.ProcessId || pid == self || ProcStat.Read(pid)?.ProcessGroup != pid) continue;
            var environment = ReadEnvironment(pid);
            if (environment.GetValueOrDefault(InstanceProcess.AgentHomeVariable) != home.Path) continue;
            groups[pid] = $"pid {pid} ({environment.GetValueOrDefault("CUTOVER_APP")}-{environment.GetValueOrDefault("CUTOVER_INSTANCE")}, " +
                          $"release {environment.GetValueOrDefault("CUTOVER_RELEASE_ID")})";
        }
        foreach (var record in recorded)
        {
            if (record.Pid is not { } pid || groups.ContainsKey(pid) || pid == self) continue;
            // A state written before start times were recorded only has the group check to go on.
            if (ProcStat.Read(pid) is { } stat && stat.ProcessGroup == pid && (record.StartTicks is null || record.StartTicks == stat.StartTicks))
                groups[pid] = $"pid {pid} ({record.Id}, release {record.ReleaseId}, recorded in the state)";
        }
        foreach (var leader in groups.Keys) LibC.Kill(-leader, SigKill);
        // Bounded wait until the groups are gone, so their ports and files are free for what starts next.
        for (var i = 0; i < 100 && groups.Keys.Any(g => LibC.Kill(-g, 0)); i++)
            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
        return groups.Values.ToList();
    }

    private static Dictionary<string, string> ReadEnvironment(int pid)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            foreach (var entry in File.ReadAllText($"/proc/{pid}/environ").Split('\0'))
            {
                var eq = entry.IndexOf('=');
                if (eq > 0) result.TryAdd(entry[..eq], entry[(eq + 1)..]);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // gone meanwhile, or another user's: not ours either way
        }
        return result;
    }
}
