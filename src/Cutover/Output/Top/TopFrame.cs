using Cutover.Agent;

namespace Cutover.Cli.Output.Top;

/// <summary>
/// What `cutover top` shows of one agent at one moment: written by `top --json` (and, one a second, by the hidden
/// `top --stream --json` a fleet's top runs on each host) and read back with this record, so both sides agree.
/// </summary>
/// <param name="Agent">Who answered; null when no agent does (then <paramref name="Error"/> says so).</param>
/// <param name="Metrics">Whether the agent serves GET /v1/metrics (CPU and p99 come only from there).</param>
/// <param name="Error">Why the agent, or a part of what it says, could not be read this time.</param>
/// <param name="Host">The fleet host it came from: set by the side that reads the host, null on the host itself.</param>
public sealed record TopFrame(DateTimeOffset At, TopAgent? Agent, IReadOnlyList<AppTop> Apps, bool Metrics, string? Error, string? Host = null);

public sealed record TopAgent(int Pid, string? Version);

/// <summary>
/// One app: its live release and proxy, the traffic over the window (requests/s, the share answered 5xx, p99 latency;
/// null until two scrapes exist, p99 null when no request was timed), a running deploy, and its instances.
/// </summary>
/// <param name="WindowSeconds">How much time the rates cover: 10 s once top has run that long, less before.</param>
public sealed record AppTop(string App, string? Release, string Proxy, double? RequestsPerSecond, double? ErrorRate, double? P99Seconds, double WindowSeconds,
    DeployingView? Deploying, bool Maintenance, bool Paused, IReadOnlyList<InstanceTop> Instances);

/// <summary>One instance (a slot of a process type): CPU is the share of one core over the window, null without metrics.</summary>
public sealed record InstanceTop(string Id, string Process, string State, string? Release, double? UptimeSeconds, double? CpuPercent, long MemoryBytes, int Restarts,
    string? Problem);
