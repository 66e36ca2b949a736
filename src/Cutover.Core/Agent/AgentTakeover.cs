using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using Cutover.Platform;
using Cutover.Supervisor;

namespace Cutover.Agent;

/// <summary>
/// The agent upgrade's wire protocol (issue 12): how a running agent ("old") hands everything it owns to a new agent
/// process ("new") without closing a socket or stopping an instance. The two sides live in AgentServer.Takeover.cs.
///
/// <code>
///  CLI ── POST /v1/agent/upgrade {command} ──▶ old   (takes its command gate: no activation meanwhile)
///  old: binds CUTOVER_HOME/takeover-&lt;pid&gt;.sock (0600, one connection), spawns `command agent --quiet --take-over SOCK`
///       (setsid, output to agent.stderr.log; the new agent never writes state.json or agent.pid before commit)
///  new ─ Hello {protocol, version, pid} ─────────────▶ old   (another protocol: HelloAnswer refused, the old serves on)
///  old ─ HelloAnswer {accepted, old version, old pid} ▶ new
///  old: every ready instance process stops being supervised and read (HandOverAsync: no byte of output lost)
///  old ─ listeners (ListeningSocketHandover)  ───────▶ new   every proxy.listen / tls.listen socket, as descriptors
///  old ─ Offer {state.json as it is, instances} ─────▶ new   fds: [0] agent.sock's listening socket, [1] agent.lock
///                                                            (flock is the open file description's: holding it is
///                                                            holding the lock), then stdout, stderr of each instance
///  new: adopts listeners (not accepting yet), rebuilds each app: routes, gates, instances adopted by pidfd with the
///       old pid, start time and restart count (readiness re-probed over http/tcp: an adopted instance has no
///       NOTIFY_SOCKET / NODE_CHANNEL_FD), the warm blue-green set out of rotation with its keep_previous deadline,
///       containers adopted by their labels as after a restart; then accepts on the listeners and agent.sock. Both
///       accept on the same sockets (one queue each: nothing refused), both proxies reach the same instances.
///  new ─ Ready {ok, error} ──────────────────────────▶ old
///  old ─ Decision {commit} ──────────────────────────▶ new   (abort: new lets everything go, touching no instance)
///  new: writes agent.pid, the lock's holder pid and state.json, then supervises the adopted instances (until here
///       it acts on no exit, health check or max_memory: a take-back leaves that to the old agent, so an instance that
///       died in between is restarted once, by whichever agent owns it); from here it owns the home
///  new ─ Committed {pid} ────────────────────────────▶ old
///  old: answers the CLI, stops accepting (its copies of the sockets close; the new agent's keep them open), lets its
///       in-flight requests finish, closes idle keep-alive connections, exits without stopping an instance or deleting
///       agent.sock / agent.pid. Requests a pause holds there stay held until the pause ends: the channel stays open
///       until the old agent exits, and
///  new ─ PauseChanged {app, until|null} ─────────────▶ old   on every pause / resume at the new agent; the old applies it
///       to its own gate (a resume releases its held requests too; a timeout ends each side's pause by itself). Then
///       its drain begins: long connections stay up to the longest drain_timeout (no 30 s host cap).
/// </code>
///
/// Every step before Committed is bounded by <see cref="Deadline"/> (30 s) on the old side. An upgrade while an app is
/// paused moves the pause (state.json has it): the new agent holds new requests, the old keeps those it holds. Whatever goes wrong before
/// it (the binary does not start, exits, speaks another protocol, refuses, is not ready in time, dies, or the channel
/// breaks), the old agent takes every instance back (same process, its pipes read on), writes its own pid to agent.pid
/// again and serves as if nothing happened; the upgrade answers why, and the CLI exits 1. SIGKILL at any moment:
/// <list type="bullet">
/// <item>the CLI: nothing depends on it; the handover runs to its end either way.</item>
/// <item>the new agent before Committed: the old one sees EOF and takes everything back.</item>
/// <item>the old agent after the Offer went out: the new one sees EOF instead of a Decision, waits for the old pid to be
/// gone, and commits on its own (it holds every socket, the lock and the instances). Before the Offer: the new one
/// exits; the old one's death closed every pipe copy but the new one's, and the next agent start ends the orphans
/// and starts the apps from state.json (OrphanInstances), as after any agent crash.</item>
/// <item>either, after Committed: the survivor (the new one) owns it all; if it is the new one that died, the next agent
/// start recovers from state.json as after any crash.</item>
/// </list>
/// state.json is the same before and after (same apps, releases, pids), so whichever agent a crash leaves, the file
/// describes what runs; the home lock (held through one open file description by whichever is alive) decides who may
/// start.
/// </summary>
public static class AgentTakeover
{
    /// <summary>Bumped whenever a message changes meaning; both agents must speak the same one or the old serves on.</summary>
    public const int ProtocolVersion = 1;

    /// <summary>The variable a test sets to make a build speak another protocol version (the refusal is tested with it).</summary>
    public const string ProtocolOverrideVariable = "CUTOVER_TAKEOVER_PROTOCOL_OVERRIDE";

    /// <summary>How long the old agent gives the new one, from spawn to Committed, unless a test shortens it.</summary>
    public static readonly TimeSpan DefaultDeadline = TimeSpan.FromSeconds(30);

    /// <summary>The variable a test sets (milliseconds) so that a new agent that never connects is given up on quickly.</summary>
    public const string DeadlineOverrideVariable = "CUTOVER_TAKEOVER_DEADLINE_MS";

    /// <summary>
    /// The variable a test sets to a file path: the new agent, once it has adopted everything, waits until that file
    /// exists before it says Ready (the takeover's window between adoption and commit, held open on purpose).
    /// </summary>
    public const string HoldBeforeReadyVariable = "CUTOVER_TAKEOVER_HOLD_BEFORE_READY";

    /// <summary>How long the old agent gives the new one, from spawn to Committed.</summary>
    public static TimeSpan Deadline => DeadlineFrom(Environment.GetEnvironmentVariable(DeadlineOverrideVariable));

    /// <summary><see cref="DefaultDeadline"/>, or a positive number of milliseconds a test set.</summary>
    public static TimeSpan DeadlineFrom(string? overrideMs) =>
        int.TryParse(overrideMs, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms) && ms > 0
            ? TimeSpan.FromMilliseconds(ms)
            : DefaultDeadline;

    /// <summary>This process's protocol version: <see cref="ProtocolVersion"/>, unless a test overrides it.</summary>
    public static int SpokenProtocol =>
        int.TryParse(Environment.GetEnvironmentVariable(ProtocolOverrideVariable), out var overridden) ? overridden : ProtocolVersion;

    public sealed record Hello(int Protocol, string Version, int Pid);

    public sealed record HelloAnswer(bool Accepted, string? Error, string OldVersion, int OldPid);

    /// <summary>
    /// The state (as state.json has it) and the instance processes handed over; descriptors: [0] agent.sock, [1] agent.lock,
    /// then each instance's <see cref="HandedInstance.Stdout"/> and <see cref="HandedInstance.Stderr"/> (indexes into them).
    /// </summary>
    public sealed record Offer(AgentState State, IReadOnlyList<HandedApp> Apps);

    public sealed record HandedApp(string App, IReadOnlyList<HandedInstance> Instances, HandedWarmSet? Warm)
    {
        /// <summary>Containers (found by their labels, not handed): each slot's restart count by instance id.</summary>
        public IReadOnlyDictionary<string, int>? ContainerRestarts { get; init; }
    }

    /// <summary>One process: its slot (index), whether it is in the warm set (out of rotation), what it runs and its counters.</summary>
    public sealed record HandedInstance(int Slot, bool Warm, string ReleaseId, string ReleaseDir, int Port, int Restarts,
        InstanceProcessDescription Process, int Stdout, int Stderr)
    {
        /// <summary>Its process type: web, or a name under processes:.</summary>
        public string Type { get; init; } = Config.ProcessConfigReader.Web;
    }

    public sealed record HandedWarmSet(string ReleaseId, string ReleaseDir, DateTimeOffset Until);

    public sealed record ReadyAnswer(bool Ready, string? Error);

    public sealed record Decision(bool Commit);

    public sealed record Committed(int Pid);

    /// <summary>New to old after Committed: <paramref name="App"/> is paused until <paramref name="Until"/> now, or resumed (null).</summary>
    public sealed record PauseChanged(string App, DateTimeOffset? Until);

    public const int ControlSocketDescriptor = 0;
    public const int HomeLockDescriptor = 1;

    public static async Task SendAsync<T>(Socket channel, T message, IReadOnlyList<int> descriptors, CancellationToken cancellationToken) =>
        await FdPassing.SendAsync(channel, JsonSerializer.SerializeToUtf8Bytes(message, Json.Compact), descriptors, cancellationToken);

    /// <summary>One message read as <typeparamref name="T"/>, with its descriptors (the caller's); anything else closes them and throws.</summary>
    public static async Task<(T Message, int[] Descriptors)> ReceiveAsync<T>(Socket channel, CancellationToken cancellationToken) where T : class
    {
        var received = await FdPassing.ReceiveAsync(channel, cancellationToken);
        if (Json.TryRead<T>(System.Text.Encoding.UTF8.GetString(received.Payload), out var problem) is not { } message)
        {
            FdPassing.CloseAll(received.Descriptors);
            throw new HandoverException($"the other agent sent something that is not a {typeof(T).Name} ({problem})");
        }
        return (message, received.Descriptors);
    }

    /// <summary>
    /// Starts `command agent --quiet --take-over channel` in a session of its own (setsid execs it: the pid stays the
    /// child's, which the old agent watches), output appended to agent.stderr.log. The test-only version override is
    /// not passed on: the new binary says its own version.
    /// </summary>
    /// <param name="metricsListen">The old agent's metrics address (or "off"), which the new one serves once the old one left.</param>
    public static Process Spawn(AgentHome home, IReadOnlyList<string> command, string channel, string metricsListen)
    {
        var start = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"exec setsid \"$@\" >> '{home.AgentStderr.Replace("'", "'\\''")}' 2>&1 < /dev/null");
        start.ArgumentList.Add("sh");
        foreach (var arg in command) start.ArgumentList.Add(arg);
        foreach (var arg in new[] { "agent", "--quiet", "--take-over", channel }) start.ArgumentList.Add(arg);
        start.Environment["CUTOVER_HOME"] = home.Path;
        start.Environment[Metrics.MetricsAddress.Variable] = metricsListen;
        start.Environment.Remove(CutoverVersion.OverrideVariable);
        start.Environment.Remove(ProtocolOverrideVariable);
        return Process.Start(start) ?? throw new DeployException($"could not start {string.Join(' ', command)}");
    }
}
