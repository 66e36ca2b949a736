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
            // Requests held by a pause live in this agent's connections: the new agent could not release them, and they
            // would be cut when this one leaves. (Maintenance moves: it holds nothing.)
            if (runtime.Proxy.Gate.PausedUntil > DateTimeOffset.UtcNow)
                return $"{app} is paused until {runtime.Proxy.Gate.PausedUntil:HH:mm:ss}Z (a deploy's migrations hold its requests); run the upgrade after `cutover resume` or the pause's end";
            if (runtime.Settings.Runtime.InstancesOutliveAgent) continue;
            foreach (var instance in runtime.Running)
            {
                if (instance.State != InstanceState.Ready || instance.Launching)
                    return $"instance {instance.Spec.Id} of {app} is {instance.State.ToString().ToLowerInvariant()}; run the upgrade again once `cutover status` shows it ready";
                handed++;
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
                apps.Add(new HandedApp(app, instances, warmSet));
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
            return (new AgentUpgraded(CutoverVersion.Current, Environment.ProcessId, hello.Version, committed.Pid), null);
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

    // ---------------------------------------------------------------- new side

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
            if (problem is null) logger.LogInformation("upgrade: took over every listener, app and instance; ready");
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
            server.CommitTakeover();
            logger.LogInformation("upgrade: committed; this agent (pid {Pid}) owns the home", Environment.ProcessId);
            await server.NotifySystemdAsync(n => n.MainPidReadyAsync(Environment.ProcessId, CancellationToken.None));
            try
            {
                await SendAsync(channel, new Committed(Environment.ProcessId), [], cancellationToken);
            }
            catch (Exception e) when (e is IOException or SocketException)
            {
                // the old agent died meanwhile: everything is ours either way
            }
            logger.LogInformation("agent {Version} took over from agent {OldVersion} (pid {OldPid})", CutoverVersion.Current, hello.OldVersion, hello.OldPid);
            channel.Dispose();
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
                // Containers: taken over by their labels, as after a restart.
                if (await runtime.AdoptAllAsync(record.ReleaseId, record.ReleaseDir!, cancellationToken) is { } error)
                    throw new HandoverException($"{record.App}: {error}");
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
                if (await managed.AdoptAsync(running, cancellationToken, inRotation: !instance.Warm, restarts: instance.Restarts) is { } problem)
                    throw new HandoverException($"instance {managed.Spec.Id} (pid {pid}) cannot be taken over: {problem}");
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
