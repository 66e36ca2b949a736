using Cutover.Releases;
using System.Net.Sockets;
using Cutover.Config;
using Cutover.Platform;
using Cutover.Supervisor;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Win32.SafeHandles;
using static Cutover.Agent.AgentTakeover;

namespace Cutover.Agent;

/// <summary>The agent upgrade, both sides: the protocol is written down in <see cref="AgentTakeover"/>.</summary>
public sealed partial class AgentServer
{
    private const string HandedOverMessage = "this agent has just handed over to a new one (cutover agent upgrade); run the command again";

    /// <summary>
    /// An upgrade is under way (old side: from the first instance handed over until commit or take-back; new side: until
    /// it commits). The state file is not written meanwhile and traffic commands are refused.
    /// </summary>
    private volatile bool _handingOver;

    /// <summary>Old side, committed: everything is the new agent's; this one only finishes its requests and leaves.</summary>
    private volatile bool _handedOver;

    private bool StateWritable => !_handingOver && !_handedOver;

    /// <summary>
    /// New side, committed: the channel to the agent that is leaving, while it is open (until that agent exits). Every
    /// pause and resume is passed on through it (<see cref="PauseChanged"/>): requests held there wait for the same resume.
    /// </summary>
    private Socket? _leavingAgent;

    /// <summary>Orders what goes to <see cref="_leavingAgent"/> (Committed first, then each change as it was made).</summary>
    private readonly SemaphoreSlim _relayGate = new(1, 1);

    /// <summary>Old side, committed: the channel the new agent passes pause changes on, read by <see cref="_followingPauses"/>.</summary>
    private Socket? _newAgentChannel;

    private Task _followingPauses = Task.CompletedTask;

    /// <summary>Old side: cancelled once this agent has drained, which ends <see cref="_followingPauses"/>.</summary>
    private readonly CancellationTokenSource _stopFollowing = new();

    /// <summary>Instances adopted in a takeover: supervised (exits, health, max_memory acted on) only once it commits.</summary>
    private readonly List<ManagedInstance> _unsupervised = [];

    private IResult? HandoverRefusal() =>
        _handedOver ? Refuse(StatusCodes.Status503ServiceUnavailable, HandedOverMessage)
        : _handingOver ? Refuse(StatusCodes.Status503ServiceUnavailable, "the agent is being upgraded right now; run the command again in a few seconds")
        : null;

    // ---------------------------------------------------------------- old side

    private async Task<IResult> UpgradeAsync(HttpContext context)
    {
        using var body = new StreamReader(context.Request.Body);
        var text = await body.ReadToEndAsync(context.RequestAborted);
        if (Json.TryRead<UpgradeRequest>(text, out var problem) is not { } request || request.Command.Count == 0 || request.Command.Any(string.IsNullOrEmpty))
            return Refuse(StatusCodes.Status400BadRequest, $"cannot read the upgrade request ({(problem.Length > 0 ? problem : "no command")})");
        await _gate.WaitAsync(context.RequestAborted);
        var committed = false;
        try
        {
            if (HandoverRefusal() is { } busy) return busy;
            if (UpgradeRefusal() is { } refusal) return Refuse(StatusCodes.Status409Conflict, refusal);
            await NotifySystemdAsync(n => n.ReloadingAsync(CancellationToken.None));
            // Not cancelled by the CLI: once begun, the handover ends in one owner, whether or not anyone waits for it.
            var (upgraded, error) = await HandOverToNewAgentAsync(request.Command);
            if (upgraded is null) return Refuse(StatusCodes.Status500InternalServerError, error!);
            committed = true;
            _logger.LogInformation("handed over to agent {Version} (pid {Pid}); draining and leaving", upgraded.NewVersion, upgraded.NewPid);
            // Stopping waits for this answer (a request in flight) like for any other, then ShutdownAsync drains.
            _web!.Services.GetRequiredService<IHostApplicationLifetime>().StopApplication();
            return Results.Json(upgraded, Json.Options);
        }
        finally
        {
            // Released after a commit too: whatever waited behind it finds _handedOver and is refused.
            _gate.Release();
            if (!committed)
            {
                _logger.LogInformation("upgrade did not happen; this agent serves on");
                await NotifySystemdAsync(n => n.ReadyAsync(CancellationToken.None));
            }
        }
    }

    /// <summary>Why the agent cannot hand over right now (an instance between states), or null.</summary>
    private string? UpgradeRefusal()
    {
        var handed = 0;
        foreach (var (app, runtime) in _apps)
        {
            // A pause moves (the new agent holds new requests), and the requests held here stay here until it ends:
            // see LeaveAfterHandoverAsync.
            foreach (var instance in runtime.Running)
            {
                // A container too: one this agent is restarting has no running container for the new agent to adopt.
                if (instance.State != InstanceState.Ready || instance.Launching)
                    return $"instance {instance.Spec.Id} of {app} is {instance.State.ToString().ToLowerInvariant()}; run the upgrade again once `cutover status` shows it ready";
                // Containers are found by their labels; only processes take descriptors.
                if (!runtime.Settings.Runtime.InstancesOutliveAgent) handed++;
            }
        }
        if (2 + 2 * handed > FdPassing.MaxDescriptors)
            return $"{handed} instances are more than one handover message carries ({(FdPassing.MaxDescriptors - 2) / 2}); restart the agent instead";
        return null;
    }

    /// <summary>The old agent's side, start to Committed; on any failure everything is taken back and the answer says why.</summary>
    private async Task<(AgentUpgraded? Upgraded, string? Error)> HandOverToNewAgentAsync(IReadOnlyList<string> command)
    {
        var channelPath = Path.Combine(_home.Path, $"takeover-{Environment.ProcessId}.sock");
        File.Delete(channelPath);
        using var listening = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listening.Bind(new UnixDomainSocketEndPoint(channelPath));
        File.SetUnixFileMode(channelPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        listening.Listen(1);
        using var deadline = new CancellationTokenSource(Deadline);
        var what = string.Join(' ', command);
        System.Diagnostics.Process newAgent;
        try
        {
            newAgent = AgentTakeover.Spawn(_home, command, channelPath, MetricsListen?.ToString() ?? Metrics.MetricsAddress.Off);
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or DeployException)
        {
            File.Delete(channelPath);
            return (null, $"could not start the new agent ({what}): {e.Message}");
        }
        _logger.LogInformation("upgrade: started the new agent (pid {Pid}): {Command}", newAgent.Id, what);
        var handed = new List<ManagedInstance>();
        // Containers (adopted by their labels): not supervised here from before the new agent looks for them.
        var suspended = new List<ManagedInstance>();
        Socket? channel = null;
        var abortSent = false;
        try
        {
            var accepting = listening.AcceptAsync(deadline.Token).AsTask();
            var exiting = newAgent.WaitForExitAsync(deadline.Token);
            if (await Task.WhenAny(accepting, exiting) != accepting)
            {
                if (!exiting.IsCompletedSuccessfully) throw new OperationCanceledException();
                return (null, $"the new agent ({what}) exited with code {newAgent.ExitCode} before it connected; its output is in {_home.AgentStderr}");
            }
            channel = await accepting;
            File.Delete(channelPath);
            if (PeerCredentials.Read(channel) is not { } peer || (peer.Uid != LibC.GetUid() && peer.Uid != 0))
                return (null, "a process of another user connected to the upgrade's socket; refused");

            var (hello, _) = await ReceiveAsync<Hello>(channel, deadline.Token);
            if (hello.Protocol != ProtocolVersion)
            {
                var mismatch = $"the new agent ({hello.Version}) speaks handover protocol {hello.Protocol}, this one ({CutoverVersion.Current}) {ProtocolVersion}; " +
                               "upgrade by stopping the agent and deploying instead";
                await SendAsync(channel, new HelloAnswer(false, mismatch, CutoverVersion.Current, Environment.ProcessId), [], deadline.Token);
                abortSent = true;
                return (null, mismatch);
            }
            await SendAsync(channel, new HelloAnswer(true, null, CutoverVersion.Current, Environment.ProcessId), [], deadline.Token);

            // From here the instances are the new agent's to supervise until it commits or everything is taken back.
            _logger.LogInformation("upgrade: the new agent {Version} (pid {Pid}) connected; handing everything over", hello.Version, hello.Pid);
            _handingOver = true;
            var descriptors = new List<int> { (int)_controlSocket!.SafeHandle.DangerousGetHandle(), _homeLock.Descriptor };
            var apps = new List<HandedApp>();
            foreach (var (app, runtime) in _apps)
            {
                var instances = new List<HandedInstance>();
                HandedWarmSet? warmSet = null;
                Dictionary<string, int>? containerRestarts = null;
                if (!runtime.Settings.Runtime.InstancesOutliveAgent)
                {
                    var warm = _warmSets.GetValueOrDefault(app)?.Current;
                    var warmInstances = warm?.Instances.Where(i => !runtime.AllSlots.Contains(i) && !i.Gone).ToArray() ?? [];
                    if (warm is not null && warmInstances.Length > 0) warmSet = new HandedWarmSet(warm.ReleaseId, warm.ReleaseDir, warm.Until);
                    // Every process type's instances (workers too); a warm set holds web instances only.
                    foreach (var (instance, isWarm) in runtime.AllSlots.Where(s => s is not null).Select(s => (s!, false)).Concat(warmInstances.Select(i => (i, true))))
                    {
                        var handover = await instance.HandOverAsync();
                        handed.Add(instance);
                        instances.Add(new HandedInstance(instance.Spec.Index, isWarm, instance.Spec.ReleaseId, instance.Spec.ReleaseDir, instance.Spec.Port,
                            instance.Restarts, handover.Description, descriptors.Count, descriptors.Count + 1) { Type = instance.Spec.Process });
                        descriptors.Add((int)handover.Stdout.DangerousGetHandle());
                        descriptors.Add((int)handover.Stderr.DangerousGetHandle());
                    }
                }
                else
                {
                    // The new agent adopts the slots' containers without acting on them until it commits: neither agent
                    // acts on an exit meanwhile, so whichever ends up owning a container restarts it, once. (A warm
                    // set's containers stay this agent's: it removes them when it leaves.)
                    foreach (var instance in runtime.AllSlots.Where(s => s is not null))
                    {
                        await instance!.SuspendForHandoverAsync();
                        handed.Add(instance);
                        suspended.Add(instance);
                        (containerRestarts ??= [])[instance.Spec.Id] = instance.Restarts;
                    }
                }
                apps.Add(new HandedApp(app, instances, warmSet) { ContainerRestarts = containerRestarts });
            }
            await ListeningSocketHandover.SendAsync(channel, await _listeners.HandedAsync(deadline.Token), deadline.Token);
            await SendAsync(channel, new Offer(new AgentState { Apps = _records.Values.ToList() }, apps), descriptors, deadline.Token);

            _logger.LogInformation("upgrade: sent {Listeners} listeners and {Instances} instances; waiting for the new agent", (await _listeners.HandedAsync(deadline.Token)).Count, handed.Count);
            var (ready, _) = await ReceiveAsync<ReadyAnswer>(channel, deadline.Token);
            if (!ready.Ready)
            {
                await SendAsync(channel, new Decision(false), [], deadline.Token);
                abortSent = true;
                return (null, $"the new agent ({hello.Version}) could not take over: {ready.Error}");
            }
            await SendAsync(channel, new Decision(true), [], deadline.Token);
            var (committed, _) = await ReceiveAsync<Committed>(channel, deadline.Token);
            _handedOver = true;
            _handingOver = false;
            // The new agent's now: this one stops following them (their logs and exits), while its proxy keeps routing
            // its requests in flight to them until it has drained.
            foreach (var instance in suspended) await instance.LetGoAsync();
            // The channel stays open while this agent leaves: the new one passes every pause and resume on, for the
            // requests a pause holds here.
            _newAgentChannel = channel;
            channel = null;
            var followed = _newAgentChannel;
            _followingPauses = Task.Run(() => ThreadPoolContext.Run(() => FollowPausesAsync(followed, _stopFollowing.Token)));
            var pausedUntil = _apps.Values.Select(a => a.Proxy.Gate.PausedUntil).Max();
            return (new AgentUpgraded(CutoverVersion.Current, Environment.ProcessId, hello.Version, committed.Pid) { PausedUntil = pausedUntil }, null);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return (null, $"the new agent ({what}) did not take over within {Deadline.TotalSeconds:0} s; see {_home.AgentLog} and {_home.AgentStderr}");
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidOperationException or ObjectDisposedException)
        {
            return (null, $"the handover to the new agent ({what}) broke off: {e.Message}");
        }
        finally
        {
            if (!_handedOver)
            {
                if (channel is not null && !abortSent)
                {
                    try
                    {
                        using var quick = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                        await SendAsync(channel, new Decision(false), [], quick.Token);
                    }
                    catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
                    {
                        // gone already: it lets go by itself on EOF
                    }
                }
                foreach (var instance in handed) await instance.TakeBackAsync();
                _handingOver = false;
                // The new agent writes its pid only on commit; it may have died right after.
                AtomicFile.WriteAllText(_home.AgentPid, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
                File.Delete(channelPath);
            }
            channel?.Dispose();
            if (!_handedOver && !newAgent.HasExited)
            {
                // It lets go and exits on the abort or the closed channel; one that hangs is killed (it owns nothing now;
                // one that never connected got nothing at all, so it goes at once).
                using var grace = new CancellationTokenSource(channel is null ? TimeSpan.Zero : TimeSpan.FromSeconds(10));
                try { await newAgent.WaitForExitAsync(grace.Token); }
                catch (OperationCanceledException) { LibC.Kill(newAgent.Id, 9); }
            }
            newAgent.Dispose();
        }
    }

    /// <summary>
    /// Old side, committed: applies the pauses and resumes the new agent passes on to this agent's gates, until the
    /// channel closes (the new agent is gone, or this one leaves). A pause here that hears nothing ends by its timeout.
    /// </summary>
    private async Task FollowPausesAsync(Socket channel, CancellationToken stop)
    {
        try
        {
            while (true)
            {
                var (change, descriptors) = await ReceiveAsync<PauseChanged>(channel, stop);
                FdPassing.CloseAll(descriptors);
                if (!_apps.TryGetValue(change.App, out var runtime)) continue;
                var gate = runtime.Proxy.Gate;
                if (change.Until is null)
                {
                    var held = gate.Held;
                    if (gate.Resume()) _logger.LogInformation("{App} resumed at the new agent: {Held} requests held here released", change.App, held);
                }
                else if (change.Until.Value - DateTimeOffset.UtcNow is var left && left > TimeSpan.Zero)
                {
                    gate.PauseFor(left);
                    _logger.LogInformation("{App} paused at the new agent until {Until:O}: so it is here", change.App, change.Until);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or HandoverException or OperationCanceledException)
        {
            // The new agent is gone or this agent is leaving: a pause held here ends by its own timeout.
        }
    }

    /// <summary>
    /// Old side, committed (from ShutdownAsync): stops accepting (the new agent accepts on the same sockets) and lets the
    /// requests in flight finish through this proxy. Requests a pause holds here wait for it to end (a resume at the new
    /// agent, passed on, forwards them; the pause's timeout answers them 503), then the drain begins: long connections
    /// (WebSockets) stay until they close or the longest drain_timeout of the apps ends, however long that is.
    /// </summary>
    private async Task LeaveAfterHandoverAsync()
    {
        var drainTimeout = _apps.Values.Select(a => a.Settings.Proxy.DrainTimeout).DefaultIfEmpty(TimeSpan.Zero).Max();
        using var drained = new CancellationTokenSource();
        var stopping = _listeners.StopAllAsync(drained.Token);
        var paused = _apps.Where(a => a.Value.Proxy.Gate.PausedUntil is not null).Select(a => a.Key).ToList();
        if (paused.Count > 0)
        {
            _logger.LogInformation("leaving: {Apps} paused; the requests held here wait for the resume (passed on by the new agent) or the pause's timeout",
                string.Join(", ", paused));
            await Task.WhenAny(stopping, Task.WhenAll(_apps.Values.Select(a => a.Proxy.Gate.UntilUnpausedAsync(CancellationToken.None))));
        }
        _logger.LogInformation("leaving: draining; long connections are closed after {Drain} (the longest drain_timeout)", Duration.Format(drainTimeout));
        drained.CancelAfter(drainTimeout);
        await stopping;
        await _stopFollowing.CancelAsync();
        await _followingPauses;
        _newAgentChannel?.Dispose();
    }

    // ---------------------------------------------------------------- new side

    /// <summary>
    /// New side, committed: tells the agent that is leaving about a pause or resume of <paramref name="app"/> (its state
    /// as it is now, so the last change wins), for the requests held there. Nothing to do once that agent has gone.
    /// </summary>
    private async Task RelayPauseAsync(string app, AppRuntime runtime)
    {
        await _relayGate.WaitAsync();
        try
        {
            if (_leavingAgent is not { } channel) return;
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await SendAsync(channel, new PauseChanged(app, runtime.Proxy.Gate.PausedUntil), [], timeout.Token);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            _leavingAgent = null; // it has left (its held requests went with it)
        }
        finally
        {
            _relayGate.Release();
        }
    }

    /// <summary>New side: the leaving agent sends nothing after Committed, so a read ends when it has exited.</summary>
    private async Task WatchLeavingAgentAsync(Socket channel)
    {
        try
        {
            FdPassing.CloseAll((await FdPassing.ReceiveAsync(channel, CancellationToken.None)).Descriptors);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
        }
        await _relayGate.WaitAsync();
        _leavingAgent = null;
        _relayGate.Release();
    }

    /// <summary>
    /// `cutover agent --take-over SOCKET`: connects to the old agent, takes everything over and, once committed, runs
    /// as the agent until stopped. Exit 0 after a commit and a normal stop; 1 when the takeover did not happen (then
    /// nothing was touched: the old agent serves on).
    /// </summary>
    public static async Task<int> TakeOverAsync(AgentHome home, string channelPath, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var logger = loggers.CreateLogger<AgentServer>();
        using var channel = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        AgentServer? server = null;
        try
        {
            await channel.ConnectAsync(new UnixDomainSocketEndPoint(channelPath), cancellationToken);
            await SendAsync(channel, new Hello(SpokenProtocol, CutoverVersion.Current, Environment.ProcessId), [], cancellationToken);
            var (hello, _) = await ReceiveAsync<HelloAnswer>(channel, cancellationToken);
            if (!hello.Accepted)
            {
                logger.LogError("upgrade: the old agent {Version} (pid {Pid}) refused the takeover: {Error}", hello.OldVersion, hello.OldPid, hello.Error);
                return 1;
            }
            var listeners = await ListeningSocketHandover.ReceiveAsync(channel, cancellationToken);
            var (offer, descriptors) = await ReceiveAsync<Offer>(channel, cancellationToken);
            if (descriptors.Length < 2)
            {
                FdPassing.CloseAll(descriptors);
                foreach (var l in listeners) l.Socket.Dispose();
                throw new HandoverException($"the old agent sent {descriptors.Length} descriptors, fewer than the control socket and the home lock");
            }
            server = new AgentServer(home, AgentHomeLock.FromHandedDescriptor(descriptors[HomeLockDescriptor]), loggers) { _handingOver = true, MetricsListen = MetricsAddressAfterTakeover(logger) };
            await server._gate.WaitAsync(cancellationToken); // no activation until committed
            string? problem = null;
            try
            {
                await server.AdoptHandedAsync(listeners, descriptors, offer, cancellationToken);
            }
            catch (Exception e) when (e is HandoverException or DeployException or ConfigException or IOException or SocketException or ArgumentException or InvalidOperationException)
            {
                problem = e.Message;
            }
            if (problem is null)
            {
                logger.LogInformation("upgrade: took over every listener, app and instance; ready");
                if (Environment.GetEnvironmentVariable(HoldBeforeReadyVariable) is { Length: > 0 } hold)
                {
                    // Test hook: the window between adoption and commit, held open until the test says go (bounded).
                    logger.LogInformation("upgrade: holding before ready until {File} exists (test hook)", hold);
                    for (var waited = 0; waited < 1200 && !File.Exists(hold); waited++) await Task.Delay(50, cancellationToken);
                }
            }
            try
            {
                await SendAsync(channel, new ReadyAnswer(problem is null, problem), [], cancellationToken);
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                // the old agent is gone: decided below
            }
            if (problem is not null)
            {
                logger.LogError("upgrade: cannot take over: {Problem}", problem);
                await server.LetGoAsync();
                return 1;
            }
            bool commit;
            try
            {
                commit = (await ReceiveAsync<Decision>(channel, cancellationToken)).Message.Commit;
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                // EOF without a decision: the old agent died after handing everything over. Ours, once it is surely gone.
                commit = await GoneAsync(hello.OldPid, TimeSpan.FromSeconds(10));
                logger.LogWarning("upgrade: the old agent (pid {Pid}) {What}", hello.OldPid, commit ? "died before it decided; this agent owns everything now" : "closed the channel but still runs; letting go");
            }
            if (!commit)
            {
                logger.LogWarning("upgrade: the old agent kept everything; this agent lets go");
                await server.LetGoAsync();
                return 1;
            }
            // Held across the commit: a pause or resume accepted from here goes to the old agent after Committed.
            await server._relayGate.WaitAsync(CancellationToken.None);
            try
            {
                server.CommitTakeover();
                logger.LogInformation("upgrade: committed; this agent (pid {Pid}) owns the home", Environment.ProcessId);
                await server.NotifySystemdAsync(n => n.MainPidReadyAsync(Environment.ProcessId, CancellationToken.None));
                try
                {
                    await SendAsync(channel, new Committed(Environment.ProcessId), [], cancellationToken);
                    server._leavingAgent = channel;
                    _ = Task.Run(() => ThreadPoolContext.Run(() => server.WatchLeavingAgentAsync(channel)));
                }
                catch (Exception e) when (e is IOException or SocketException)
                {
                    // the old agent died meanwhile: everything is ours either way
                }
            }
            finally
            {
                server._relayGate.Release();
            }
            logger.LogInformation("agent {Version} took over from agent {OldVersion} (pid {OldPid})", CutoverVersion.Current, hello.OldVersion, hello.OldPid);
            // The old agent lets the metrics address go as it leaves; bound here once it has.
            _ = server.StartMetricsAfterTakeoverAsync(cancellationToken);
            await server.WaitUntilStoppedAsync(cancellationToken);
            await server.DisposeAsync();
            return 0;
        }
        catch (Exception e) when (e is HandoverException or IOException or SocketException)
        {
            logger.LogError("upgrade: the takeover broke off: {Error}", e.Message);
            if (server is not null) await server.LetGoAsync();
            return 1;
        }
    }

    /// <summary>Whether <paramref name="pid"/> exits within <paramref name="within"/> (pidfd: a zombie counts as gone).</summary>
    private static async Task<bool> GoneAsync(int pid, TimeSpan within)
    {
        using var watch = ProcessWatch.TryOpen(pid);
        if (watch is null) return true;
        using var timeout = new CancellationTokenSource(within);
        try
        {
            await watch.WaitForExitAsync(timeout.Token);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>
    /// Rebuilds what the old agent handed over: listeners (not accepting yet), every app with its routes, gates,
    /// instances and warm set, then accepts on the listeners and on agent.sock.
    /// </summary>
    private async Task AdoptHandedAsync(IReadOnlyList<ReceivedListener> listeners, int[] descriptors, Offer offer, CancellationToken cancellationToken)
    {
        var control = new Socket(new SafeSocketHandle(descriptors[ControlSocketDescriptor], ownsHandle: true));
        _controlSocket = control;
        await _listeners.AdoptAsync(listeners, cancellationToken, accept: false);
        foreach (var record in offer.State.Apps)
        {
            _records[record.App] = record;
            var runtime = await RebuildAppAsync(record, cancellationToken);
            if (record.Stopped || record.ReleaseId is null) continue;
            if (runtime.Settings.Runtime.InstancesOutliveAgent)
            {
                // Containers: taken over by their labels, as after a restart, but not acted on before the commit (the old
                // agent may take them back) and nothing started or removed.
                var restarts = offer.Apps.FirstOrDefault(a => a.App == record.App)?.ContainerRestarts ?? new Dictionary<string, int>();
                if (await runtime.AdoptAllAsync(record.ReleaseId, record.ReleaseDir!, cancellationToken, new ContainerHandover(restarts)) is { } error)
                    throw new HandoverException($"{record.App}: {error}");
                _unsupervised.AddRange(runtime.AllSlots.Where(s => s is not null).Select(s => s!));
                continue;
            }
            var handed = offer.Apps.FirstOrDefault(a => a.App == record.App);
            var warm = new List<ManagedInstance>();
            foreach (var instance in handed?.Instances ?? [])
            {
                var group = runtime.Groups.FirstOrDefault(g => g.Name == instance.Type)
                            ?? throw new HandoverException($"instance {instance.Slot} of process type {instance.Type}: {record.App}'s config has no such type");
                if (instance.Slot >= group.Slots.Length)
                    throw new HandoverException($"instance {instance.Slot} of {instance.Type}: {record.App} runs {group.Slots.Length} of that type");
                var managed = runtime.NewInstance(group, instance.Slot, instance.ReleaseId, instance.ReleaseDir, instance.Port);
                var pid = instance.Process.Pid;
                var running = InstanceProcess.Adopt(instance.Process,
                    new SafePipeHandle(descriptors[instance.Stdout], ownsHandle: true), new SafePipeHandle(descriptors[instance.Stderr], ownsHandle: true),
                    (stream, line) => runtime.Log.Write(managed.Spec.Id, pid, stream, line));
                // Not supervised before the commit: until then the old agent may take it back and act on an exit itself.
                if (await managed.AdoptAsync(running, cancellationToken, inRotation: !instance.Warm, restarts: instance.Restarts, supervise: false) is { } problem)
                    throw new HandoverException($"instance {managed.Spec.Id} (pid {pid}) cannot be taken over: {problem}");
                _unsupervised.Add(managed);
                if (instance.Warm) warm.Add(managed);
                else group.Slots[instance.Slot] = managed;
            }
            if (handed?.Warm is { } warmSet && warm.Count > 0)
                WarmSetOf(record.App).Adopt(runtime, warm.OrderBy(i => i.Spec.Index).ToArray(), warmSet.ReleaseId, warmSet.ReleaseDir, warmSet.Until);
        }
        await _listeners.StartAcceptingAsync(cancellationToken);
        await StartControlAsync(control, cancellationToken);
    }

    /// <summary>The old agent said commit (or died after handing everything over): the home is this agent's from here.</summary>
    private void CommitTakeover()
    {
        AtomicFile.WriteAllText(_home.AgentPid, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        _homeLock.WriteHolder();
        _handingOver = false;
        foreach (var runtime in _apps.Values) SaveInstances(runtime);
        if (_apps.Count == 0) _store.Write(new AgentState { Apps = _records.Values.ToList() });
        // Ours from here: an instance that died since the adoption is restarted now, by this agent only.
        foreach (var instance in _unsupervised) instance.Supervise();
        _unsupervised.Clear();
        _gate.Release();
    }

    /// <summary>
    /// The takeover did not happen: this agent stops accepting (its requests in flight finish), lets every instance go
    /// without a signal, closes its copies of the sockets and of the lock, and touches no file of the home.
    /// </summary>
    private async Task LetGoAsync()
    {
        _handedOver = true; // nothing written, nothing deleted from here
        await _listeners.DisposeAsync();
        if (_web is not null)
        {
            await _web.StopAsync();
            await _web.DisposeAsync();
            _web = null;
        }
        CloseSharedControlSocket();
        foreach (var runtime in _apps.Values)
        {
            foreach (var instance in runtime.Running.Where(i => i.State == InstanceState.Ready && i.Pid is not null))
            {
                try
                {
                    await instance.HandOverAsync(); // its own word for "stop supervising without stopping"
                }
                catch (InvalidOperationException)
                {
                    // not a process (a container, left running as when the agent stops)
                }
            }
            await runtime.LeaveRunningAsync();
        }
        _apps.Clear();
        await _acme.DisposeAsync();
        _http.Dispose();
        _homeLock.Dispose();
    }
}
