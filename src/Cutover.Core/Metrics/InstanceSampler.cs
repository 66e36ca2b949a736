using Cutover.Platform;
using Cutover.Releases;
using Cutover.Supervisor;
using Prometheus;

namespace Cutover.Metrics;

/// <summary>
/// The gauges that describe what runs right now, set at each scrape (nothing is sampled between scrapes): instances by
/// state, each instance's memory and CPU from /proc, requests open to the instances, the release each app runs and when
/// the certificates it serves expire. Series of what is gone (a replaced instance, a previous release) are removed.
/// </summary>
public sealed class InstanceSampler(AgentMetrics metrics)
{
    private static readonly string[] States = Enum.GetValues<InstanceState>().Select(s => System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(s.ToString())).ToArray();
    private readonly double _secondsPerTick = 1.0 / LibC.ClockTicksPerSecond();
    /// <summary>release directory -> the revision its record names ("" without one); read once per release.</summary>
    private readonly Dictionary<string, string> _revisions = new(StringComparer.Ordinal);
    /// <summary>
    /// Per instance series: the process last seen in the slot (pid + start time) and its CPU ticks then. A slot's counter
    /// adds each process's CPU as it grows, and all of a new process's (a restart, a deploy's replacement), so it only
    /// ever rises, whichever process fills the slot.
    /// </summary>
    private readonly Dictionary<string, (int Pid, long StartTicks, long CpuTicks)> _cpuSeen = new(StringComparer.Ordinal);

    /// <summary>One app as the agent runs it, and the certificates (host, expiry) it serves.</summary>
    public sealed record AppSample(AppRuntime Runtime, IReadOnlyList<(string Host, DateTimeOffset NotAfter)> Certificates);

    /// <summary>Sets every live gauge from <paramref name="apps"/>; called under the scrape's lock, one at a time.</summary>
    public void Sample(IReadOnlyList<AppSample> apps)
    {
        var groups = ProcessGroups();
        var states = new HashSet<string>(StringComparer.Ordinal);
        var instances = new HashSet<string>(StringComparer.Ordinal);
        var releases = new HashSet<string>(StringComparer.Ordinal);
        var hosts = new HashSet<string>(StringComparer.Ordinal);
        var active = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (runtime, certificates) in apps)
        {
            var app = runtime.Config.App;
            foreach (var group in runtime.Groups)
            {
                var counts = new int[States.Length];
                foreach (var slot in group.Slots) counts[(int)(slot?.State ?? InstanceState.Stopped)]++;
                for (var state = 0; state < States.Length; state++)
                {
                    string[] stateLabels = [app, group.Name, States[state]];
                    states.Add(Key(stateLabels));
                    metrics.Instances.WithLabels(stateLabels).Set(counts[state]);
                }
                // Published at 0 before the first restart, so increase() has a series to start from.
                metrics.Restarts.WithLabels(app, group.Name);
                // The instances in service, one per slot (the slot is the instance label): a deploy's instance not yet
                // in its slot and the warm blue-green set share slot ids with them and are not measured here.
                foreach (var instance in group.Slots)
                {
                    if (instance?.Pid is not { } pid) continue;
                    var (rss, cpuTicks, startTicks) = AppProcessesOf(pid, groups);
                    string[] labels = [app, group.Name, instance.Spec.Id];
                    var key = Key(labels);
                    instances.Add(key);
                    metrics.Memory.WithLabels(labels).Set(rss);
                    var same = _cpuSeen.TryGetValue(key, out var seen) && seen.Pid == pid && seen.StartTicks == startTicks;
                    // Only growth counts: a group's ticks fall when one of its processes exits (they leave with it).
                    var added = same ? Math.Max(0, cpuTicks - seen.CpuTicks) : cpuTicks;
                    _cpuSeen[key] = (pid, startTicks, same ? Math.Max(cpuTicks, seen.CpuTicks) : cpuTicks);
                    metrics.Cpu.WithLabels(labels).Inc(added * _secondsPerTick);
                }
            }
            // Requests open to every instance of the app, those draining after a deploy included.
            long inFlight = 0;
            foreach (var instance in runtime.Running) inFlight += instance.Backend?.InFlight ?? 0;
            metrics.ActiveConnections.WithLabels(app).Set(inFlight);
            active.Add(app);
            if (runtime.ReleaseId is { } release)
            {
                string[] labels = [app, release, RevisionOf(runtime.ReleaseDir)];
                releases.Add(Key(labels));
                metrics.ReleaseInfo.WithLabels(labels).Set(1);
            }
            foreach (var (host, notAfter) in certificates)
            {
                hosts.Add(host);
                metrics.CertificateExpiry.WithLabels(host).Set(notAfter.ToUnixTimeSeconds());
            }
        }
        RemoveOthers(metrics.Instances, states);
        RemoveOthers(metrics.Memory, instances);
        foreach (var gone in _cpuSeen.Keys.Where(k => !instances.Contains(k)).ToList()) _cpuSeen.Remove(gone);
        RemoveOthers(metrics.Cpu, instances);
        RemoveOthers(metrics.ReleaseInfo, releases);
        RemoveOthers(metrics.CertificateExpiry, hosts);
        RemoveOthers(metrics.ActiveConnections, active);
    }

    /// <summary>
    /// An instance's pid is the group leader: the agent's exit-status wrapper (sh) for a process, whose children are the
    /// app; a container's init otherwise. The group without its leader is the app; a group of one is the app itself.
    /// </summary>
    /// <returns>Memory and CPU ticks of the app's processes, and the leader's start time (which with the pid names the process).</returns>
    private static (long RssBytes, long CpuTicks, long StartTicks) AppProcessesOf(int leader, Dictionary<int, List<(int Pid, ProcStat Stat)>> groups)
    {
        if (!groups.TryGetValue(leader, out var members))
            return ProcStat.Read(leader) is { } alone ? (alone.RssBytes, alone.CpuTicks, alone.StartTicks) : (0, 0, 0);
        var leaderStart = members.FirstOrDefault(m => m.Pid == leader).Stat.StartTicks;
        long rss = 0, cpu = 0;
        var counted = 0;
        foreach (var (pid, stat) in members)
        {
            if (pid == leader) continue;
            rss += stat.RssBytes;
            cpu += stat.CpuTicks;
            counted++;
        }
        if (counted > 0) return (rss, cpu, leaderStart);
        var only = members.FirstOrDefault(m => m.Pid == leader).Stat;
        return (only.RssBytes, only.CpuTicks, leaderStart);
    }

    /// <summary>One pass over /proc per scrape: process group -> its members.</summary>
    private static Dictionary<int, List<(int Pid, ProcStat Stat)>> ProcessGroups()
    {
        var groups = new Dictionary<int, List<(int, ProcStat)>>();
        foreach (var pid in ProcStat.AllPids())
        {
            if (ProcStat.Read(pid) is not { } stat) continue;
            if (!groups.TryGetValue(stat.ProcessGroup, out var members)) groups[stat.ProcessGroup] = members = [];
            members.Add((pid, stat));
        }
        return groups;
    }

    private string RevisionOf(string? releaseDir)
    {
        if (releaseDir is null) return "";
        if (_revisions.TryGetValue(releaseDir, out var known)) return known;
        var revision = "";
        var root = Path.GetDirectoryName(Path.GetDirectoryName(releaseDir));
        if (root is not null && ReleaseId.TryParse(Path.GetFileName(releaseDir), out var id))
            revision = new ReleaseStore(new RootLayout(root)).Describe(id)?.Revision ?? "";
        return _revisions[releaseDir] = revision;
    }

    private static string Key(string[] labels) => string.Join('\0', labels);

    private static void RemoveOthers<TChild>(Collector<TChild> collector, HashSet<string> keep) where TChild : ChildBase
    {
        foreach (var labels in collector.GetAllLabelValues().ToList())
            if (!keep.Contains(Key(labels))) collector.RemoveLabelled(labels);
    }
}
