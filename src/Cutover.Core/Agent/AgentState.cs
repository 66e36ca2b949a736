using System.Text.Json;
using Cutover.Platform;

namespace Cutover.Agent;

public sealed record InstanceRecord(string Id, int Pid, int Port, string ReleaseId);

/// <summary>What the agent runs for one app: enough to start it again after the agent restarts.</summary>
public sealed record AppRecord
{
    public required string App { get; init; }
    public required string ConfigFile { get; init; }
    public string? ReleaseId { get; init; }
    public string? ReleaseDir { get; init; }
    public bool Stopped { get; init; }
    public IReadOnlyList<InstanceRecord> Instances { get; init; } = [];
}

public sealed record AgentState
{
    public IReadOnlyList<AppRecord> Apps { get; init; } = [];
}

/// <summary>The agent's state file, written atomically (temp file, fsync, rename) after every change.</summary>
public sealed class AgentStateStore(AgentHome home)
{
    public AgentState Read()
    {
        if (!File.Exists(home.State)) return new AgentState();
        try
        {
            return JsonSerializer.Deserialize<AgentState>(File.ReadAllText(home.State), Json.Options) ?? new AgentState();
        }
        catch (JsonException)
        {
            return new AgentState();
        }
    }

    public void Write(AgentState state) => AtomicFile.WriteAllText(home.State, JsonSerializer.Serialize(state, Json.Options));
}
