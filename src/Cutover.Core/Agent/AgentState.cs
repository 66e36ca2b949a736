using System.Text.Json;
using Cutover.Platform;

namespace Cutover.Agent;

/// <summary>
/// One instance process the agent runs or is starting: written before the process exists (Pid null) and again once it
/// runs, with its start time (clock ticks since boot, from /proc/&lt;pid&gt;/stat) so a reused pid is never taken for it.
/// </summary>
/// <param name="Process">The process type ("web", or a name under `processes:`); null in a state written before process types.</param>
public sealed record InstanceRecord(string Id, int? Pid, int Port, string ReleaseId, long? StartTicks = null, string? Process = null);

/// <summary>What the agent runs for one app: enough to start it again after the agent restarts.</summary>
public sealed record AppRecord
{
    public required string App { get; init; }
    public required string ConfigFile { get; init; }
    /// <summary>Every -c file in order when there were several (ConfigFile is the last); null for one, as before.</summary>
    public IReadOnlyList<string>? ConfigFiles { get; init; }
    [System.Text.Json.Serialization.JsonIgnore]
    public IReadOnlyList<string> ConfigLayers => ConfigFiles is { Count: > 0 } files ? files : [ConfigFile];
    public string? ReleaseId { get; init; }
    public string? ReleaseDir { get; init; }
    public bool Stopped { get; init; }
    /// <summary>The host's fleet roles the app was activated with (null: no fleet, every process type runs).</summary>
    public IReadOnlyList<string>? Roles { get; init; }
    /// <summary>`cutover scale` counts by process type, each with the config's count it overrode: restored by a restarted agent, dropped once the config's count changes.</summary>
    public IReadOnlyDictionary<string, Supervisor.ScaledCount>? Scaled { get; init; }
    /// <summary>`cutover maintenance on`: stays on across agent restarts until `off`.</summary>
    public Proxy.MaintenancePage? Maintenance { get; init; }
    /// <summary>A pause's deadline: a restarted agent pauses again for what is left of it, never longer.</summary>
    public DateTimeOffset? PausedUntil { get; init; }
    public IReadOnlyList<InstanceRecord> Instances { get; init; } = [];
}

public sealed record AgentState
{
    public IReadOnlyList<AppRecord> Apps { get; init; } = [];
}

/// <summary>What <see cref="AgentStateStore.Read"/> found, and what a person must hear about it (null when all was well).</summary>
public sealed record StateRead(AgentState State, string? Warning);

/// <summary>
/// The agent's state file, written atomically (temp file, rename) after every change. A state.json that does not parse
/// (a disk or an editor broke it, or a machine crash caught a write that was not durable) is never taken for "no apps":
/// it is kept aside as state.corrupt-&lt;time&gt;.json and the last good copy, state.last-good.json, is used instead.
/// Two kinds of write (see <see cref="Write(string)"/> and <see cref="WriteInstances"/>): what an app runs (release,
/// config, stopped, scale, maintenance, pause) is written durably to both files, since it must survive a machine crash;
/// which pids run now is written to state.json alone without fsync, since a machine crash ends those processes anyway and
/// only a crash of the agent needs them, which the page cache survives.
/// </summary>
public sealed class AgentStateStore(AgentHome home)
{
    public string LastGood => Path.Combine(home.Path, "state.last-good.json");

    public StateRead Read()
    {
        if (!File.Exists(home.State)) return new StateRead(new AgentState(), null);
        var problem = TryParse(home.State, out var state);
        if (problem is null) return new StateRead(state!, null);

        var stamp = DateTimeOffset.UtcNow.ToString("yyyyMMdd'T'HHmmssfff'Z'", System.Globalization.CultureInfo.InvariantCulture);
        var kept = Path.Combine(home.Path, $"state.corrupt-{stamp}.json");
        for (var n = 2; File.Exists(kept); n++) kept = Path.Combine(home.Path, $"state.corrupt-{stamp}-{n}.json");
        File.Move(home.State, kept);
        var what = $"{home.State} is corrupt ({problem}); kept it as {kept}";
        if (!File.Exists(LastGood))
            return new StateRead(new AgentState(), $"{what}; there is no last good copy, so the agent restored no app: deploy each app again (or `cutover start`)");
        var lastGoodProblem = TryParse(LastGood, out var good);
        if (lastGoodProblem is not null)
            return new StateRead(new AgentState(), $"{what}; its last good copy {LastGood} is corrupt too ({lastGoodProblem}), so the agent restored no app: deploy each app again");
        return new StateRead(good!, $"{what}; restored {good!.Apps.Count} app(s) ({string.Join(", ", good.Apps.Select(a => a.App))}) from {LastGood}, written {File.GetLastWriteTimeUtc(LastGood):yyyy-MM-dd HH:mm:ss}Z");
    }

    private static string? TryParse(string file, out AgentState? state)
    {
        state = null;
        try
        {
            state = JsonSerializer.Deserialize<AgentState>(File.ReadAllText(file), Json.Options);
            if (state is null) return "it holds null";
            // Valid JSON is not yet a valid state: a null list or entry would fail later, far from the cause.
            if (state.Apps is null || state.Apps.Any(a => a is null || a.Instances is null)) return "its apps list or one of its entries is null";
            return null;
        }
        catch (JsonException e)
        {
            return e.Message;
        }
    }

    public static string Serialize(AgentState state) => JsonSerializer.Serialize(state, Json.Options);

    public void Write(AgentState state) => Write(Serialize(state));

    /// <summary>
    /// Durably, to state.json and then the same bytes to its copy: each file's content fsynced before its rename, one
    /// fsync of the directory for both (3 fsyncs). Whatever instant a crash picks, each file is whole, and once this
    /// returns both are on disk. After it the last good copy always holds what the apps run, whatever
    /// <see cref="WriteInstances"/> does to state.json later.
    /// </summary>
    public void Write(string text) =>
        AtomicFile.WriteAllTexts(home.Path, [(Path.GetFileName(home.State), text), (Path.GetFileName(LastGood), text)]);

    /// <summary>
    /// state.json alone, durably (2 fsyncs): what an activation must have on disk before it answers. The caller writes the
    /// copy (<see cref="WriteLastGood"/>) after answering, and before any <see cref="WriteInstances"/>.
    /// </summary>
    public void WriteState(string text) => AtomicFile.WriteAllText(home.State, text);

    /// <summary>The last good copy alone, durably (2 fsyncs): catching up with a <see cref="WriteState"/>.</summary>
    public void WriteLastGood(string text) => AtomicFile.WriteAllText(LastGood, text);

    /// <summary>
    /// A change of pids only (an instance started, restarted or gone), the apps' own records as the last durable
    /// <see cref="Write(string)"/> left them: state.json replaced atomically without fsync, the copy untouched. A crashed
    /// agent's successor reads the pids (the page cache outlives the agent); after a machine crash the processes are gone
    /// anyway, and a state.json the crash left torn is read from the copy, which names the same releases.
    /// </summary>
    public void WriteInstances(string text) => AtomicFile.Replace(home.State, text);
}
