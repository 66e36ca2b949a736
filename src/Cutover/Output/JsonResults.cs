using Cutover.Agent;
using Cutover.Fleet;
using Cutover.History;
using Cutover.Locking;
using Cutover.Probe;
using Cutover.Progress;

namespace Cutover.Cli.Output;

// What `--json` prints: public interface (the field names are the ones in README), and also what a fleet deployer
// reads back from each host's `cutover status|releases|rollback --json` (FleetCommands). The commands write these
// records and FleetCommands reads the same ones, so a renamed field breaks the build, not a fleet's status table.

/// <summary>The last line of `deploy --json` (one machine).</summary>
public sealed record DeployResultEvent(
    string Command,
    string App,
    string Outcome,
    string Release,
    string? Revision,
    string? Previous,
    string? Error,
    IReadOnlyList<string> Pruned,
    IReadOnlyDictionary<string, double> PhaseSeconds,
    ProbeSummary? Probe) : ResultEvent;

/// <summary>The last line of `restart --json` and `scale --json`: Instances counts the app's instances per process type once it ended.</summary>
public sealed record InstanceCommandResultEvent(string Command, string App, string Outcome, string Release, string? Error, IReadOnlyDictionary<string, int> Instances) : ResultEvent;

/// <summary>The last line of `restart --json` / `scale --json` with hosts: one row per host.</summary>
public sealed record FleetInstanceCommandResultEvent(string Command, string App, string Outcome, IReadOnlyList<HostInstanceCommand> Hosts) : ResultEvent;

/// <summary>One host's restart or scale: its outcome word (live, not_live, paused, cancelled, failed) and its instances per type.</summary>
public sealed record HostInstanceCommand(string Host, bool Ok, string Outcome, string? Error, string Instances);

/// <summary>`deploy --probe`'s count, in the deploy's result and as `probe --json`.</summary>
public sealed record ProbeSummary(long Requests, long Failed, IReadOnlyDictionary<string, long> Failures, LatencySummary LatencyMs, WorstWindow? WorstWindow, double Seconds)
{
    public static ProbeSummary Of(ProbeReport report) =>
        new(report.Requests, report.Failed, report.Failures, report.LatencyMs, report.WorstWindow, report.Seconds);
}

/// <summary>The last line of `deploy --json` with hosts: the outcome and one entry per host.</summary>
public sealed record FleetDeployResultEvent(string Command, string App, string Outcome, string? Release, string? Error, IReadOnlyList<HostReport> Hosts, double Seconds)
    : ResultEvent;

/// <summary>The last line of `rollback --json` (one machine); a fleet rollback reads it from every host.</summary>
public sealed record RollbackResultEvent(
    string Command,
    string App,
    string Outcome,
    string From,
    string Release,
    string? Revision,
    string? Error,
    IReadOnlyDictionary<string, double> PhaseSeconds) : ResultEvent;

/// <summary>The last line of `rollback --json` with hosts.</summary>
public sealed record FleetRollbackResultEvent(string Command, string App, string Outcome, string Release, IReadOnlyList<HostRollback> Hosts) : ResultEvent;

/// <summary>One host's rollback: "-" for what it did not say (it failed before it had a result).</summary>
public sealed record HostRollback(string Host, bool Ok, string From, string Release, string? Error);

/// <summary>`status --json` (one machine); a fleet's status and rollback read it from every host.</summary>
public sealed record StatusReport(
    string App,
    string Strategy,
    string Root,
    CurrentReleaseView? Current,
    string? RollbackTarget,
    PausedReleaseView? Paused,
    int Releases,
    int FailedReleases,
    HistoryEntry? LastAction,
    LockHolder? LockedBy,
    AppView? Agent,
    IReadOnlyList<string> AgentWarnings,
    SwarmView? Swarm,
    AgentInfo? AgentProcess = null);

/// <summary>The release `current` names, as its record says.</summary>
public sealed record CurrentReleaseView(string Id, string? Revision, string Status, DateTimeOffset Since, string? Failure);

/// <summary>A paused rolling deploy: its release serves beside `current`'s until deploy or rollback.</summary>
public sealed record PausedReleaseView(string Id, string? Why);

/// <summary>`strategy: swarm`: the service as the manager reports it.</summary>
public sealed record SwarmView(
    string Service,
    bool Exists,
    string? Image,
    string? Release,
    ReplicaCount Replicas,
    string? UpdateState,
    string? UpdateMessage,
    string? Error,
    IReadOnlyList<SwarmTaskView> Tasks);

public sealed record ReplicaCount(int Running, int Desired);

public sealed record SwarmTaskView(string Id, long Slot, string State, string DesiredState, string Image, string? Release, DateTimeOffset Since, string? Error, long? ExitCode);

/// <summary>One entry of `releases --json` (newest first); a fleet's releases table reads it from every host.</summary>
public sealed record ReleaseView(string Id, string? Revision, string? Image, DateTimeOffset Created, string Status, bool Current, bool RollbackTarget, string? Failure);

/// <summary>
/// A line of `logs --json`: one instance log line with its parts (<see cref="Line"/> is the line as written); with
/// hosts, <see cref="Host"/> names where it was read. Also what a fleet's `logs` reads back from each host.
/// </summary>
public sealed record LogLineEvent(string? Host, DateTimeOffset? Time, string? Instance, string? Stream, string Text, string Line)
{
    /// <summary>
    /// `logs --remote -f` prints this once its recent lines are out, so the deployer can merge every host's recent
    /// lines in time order before it follows them as they come.
    /// </summary>
    public bool? CaughtUp { get; init; }
}

/// <summary>
/// Compile-time contracts for the `--json` answers the Native AOT `cutover` writes itself (status, releases, probe;
/// Platform/JitOnly says why it has no others), used through <see cref="CliJson"/>.
/// </summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(StatusReport))]
[System.Text.Json.Serialization.JsonSerializable(typeof(List<ReleaseView>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(ProbeSummary))]
internal sealed partial class CliJsonContracts : System.Text.Json.Serialization.JsonSerializerContext;

/// <summary>Cutover's JSON dialect with <see cref="CliJsonContracts"/> consulted first.</summary>
public static class CliJson
{
    public static readonly System.Text.Json.JsonSerializerOptions Indented = Json.With(CliJsonContracts.Default, indented: true);
    public static readonly System.Text.Json.JsonSerializerOptions Compact = Json.With(CliJsonContracts.Default, indented: false);
}
