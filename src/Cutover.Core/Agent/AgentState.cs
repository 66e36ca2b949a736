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
/// The agent's state file, written atomically (temp file, fsync, rename) after every change, and a copy of the
/// same bytes as state.last-good.json. A state.json that does not parse (a disk or an editor broke it) is never
/// taken for "no apps": it is kept aside as state.corrupt-&lt;time&gt;.json and the last good copy is used instead.
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

    public void Write(AgentState state)
    {
        var text = JsonSerializer.Serialize(state, Json.Options);
        AtomicFile.WriteAllText(home.State, text);
        // The copy is written second: whatever instant a crash picks, one of the two is whole and recent.
        AtomicFile.WriteAllText(LastGood, text);
    }
}
