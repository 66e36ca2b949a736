using Cutover.Platform;
using Cutover.Proxy;
using Microsoft.Extensions.Logging;

namespace Cutover.Supervisor;

/// <summary>
/// One instance slot's process under supervision: started, judged ready, put in the proxy, watched (exit,
/// health, memory), restarted with exponential backoff (100 ms doubling to 15 s), and given up on as errored
/// after max_restarts exits that each came before min_uptime.
/// </summary>
public sealed class ManagedInstance : IAsyncDisposable
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(15);
    private readonly ReadinessProbe _probe;
    private readonly ProxyServer _proxy;
    private readonly LogSink _log;
    private readonly IInstanceLauncher _launcher;
    private readonly ILogger _logger;
    /// <summary>Cancelled to stop supervising; replaced when a handover is taken back and supervision resumes.</summary>
    private CancellationTokenSource _stop = new();
    private Task _watch = Task.CompletedTask;
    private IRunningInstance? _process;
    private Backend? _backend;

    private readonly Func<int> _allocatePort;
    private readonly Action<ManagedInstance> _changed;
    private bool _enterProxy = true;
    /// <summary>Its process went to another agent (<see cref="HandOverAsync"/>): never stopped from here.</summary>
    private bool _handedOver;
    /// <summary>Adopted with supervision deferred (a takeover not yet committed): <see cref="Supervise"/> starts it.</summary>
    private bool _supervisionDeferred;
    /// <summary>
    /// A container the new agent of an upgrade adopts by its labels: not supervised from here while the handover is
    /// open (<see cref="SuspendForHandoverAsync"/>), again after a take-back (<see cref="TakeBackAsync"/>).
    /// </summary>
    private bool _suspendedForHandover;

    /// <summary>Whether this instance should take traffic; the blue-green switch flips whole sets with it.</summary>
    public bool InRotation
    {
        get => _enterProxy;
        set => _enterProxy = value;
    }

    /// <summary>The proxy's view of this instance while it is ready (null before, and after it stopped).</summary>
    public Backend? Backend => _backend;

    /// <param name="changed">
    /// Called before a process is started, as soon as it runs, and once it is gone, so the agent can write down
    /// every process before it could be orphaned.
    /// </param>
    public ManagedInstance(InstanceSpec spec, ReadinessProbe probe, ProxyServer proxy, LogSink log, IInstanceLauncher launcher, ILogger logger, Func<int> allocatePort, Action<ManagedInstance>? changed = null)
    {
        _changed = changed ?? (_ => { });
        _allocatePort = allocatePort;
        Spec = spec;
        _probe = probe;
        _proxy = proxy;
        _log = log;
        _launcher = launcher;
        _logger = logger;
    }

    /// <summary>What the current process was started with; a start-first replacement gets a new port.</summary>
    public InstanceSpec Spec { get; private set; }
    public InstanceState State { get; private set; } = InstanceState.Starting;
    public int Restarts { get; private set; }
    /// <summary>Told of each restart supervision makes (the agent's cutover_instance_restarts_total); Restarts alone starts at 0 with every new instance.</summary>
    internal Action<ManagedInstance>? Restarted { get; init; }

    private void CountRestart()
    {
        Restarts++;
        Restarted?.Invoke(this);
    }
    /// <summary>Deaths and failed health checks since it first became ready; the rolling monitor reads this.</summary>
    public int Failures { get; private set; }
    public string? LastProblem { get; private set; }
    public int? Pid => _process?.Pid;
    /// <summary>A process is being started for it right now (its pid is not known yet).</summary>
    public bool Launching { get; private set; }
    /// <summary>Stopped for good (or never started): nothing of it runs, nothing will.</summary>
    public bool Gone { get; private set; }
    /// <summary>Where it is reached (loopback port, or container address), while it runs.</summary>
    public System.Net.IPEndPoint? Endpoint => _process?.Endpoint;
    /// <summary>"pid 1234" or "container 3f2a1b9c (pid 1234)".</summary>
    public string? Description => _process?.Description;
    public DateTimeOffset? Since => _process?.Started;
    public long RssBytes => _process is { HasExited: false } p ? p.RssBytes() : 0;

    /// <summary>Starts the process and waits until it is ready; then it is in the proxy. Null, or why it failed.</summary>
    public async Task<string?> StartAsync(CancellationToken cancellationToken) => await StartAsync(enterProxy: true, cancellationToken);

    /// <summary>
    /// With <paramref name="enterProxy"/> false the instance is started and made ready but kept out of the
    /// proxy (a blue-green set waiting for its switch); <see cref="Backend"/> is then added by the caller.
    /// </summary>
    public async Task<string?> StartAsync(bool enterProxy, CancellationToken cancellationToken)
    {
        _enterProxy = enterProxy;
        string? problem;
        try
        {
            problem = await LaunchAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // A deploy cancelled while this instance was starting: it never entered the proxy and must not outlive it.
            State = InstanceState.Stopped;
            LastProblem = "cancelled before it was ready";
            if (_process is not null) await _process.DisposeAsync();
            throw;
        }
        if (problem is not null)
        {
            State = InstanceState.Stopped;
            LastProblem = problem;
            if (_process is not null) await _process.DisposeAsync();
            Gone = true;
            _changed(this);
            return problem;
        }
        _watch = Task.Run(() => ThreadPoolContext.Run(() => WatchAsync(_stop.Token)));
        return null;
    }

    private async Task<string?> LaunchAsync(CancellationToken cancellationToken)
    {
        State = InstanceState.Starting;
        IRunningInstance? started = null;
        // Told before the process exists (Running lists it from here) and again once it has a pid, which the agent records:
        // an agent killed in between leaves a process its successor finds by the agent home in its environment.
        Launching = true;
        _changed(this);
        var output = new OutputSignal();
        try
        {
            started = await _launcher.StartAsync(Spec, (stream, line) =>
            {
                _log.Write(Spec.Id, started?.Pid, stream, line);
                output.Pulse();
            }, cancellationToken);
            _process = started;
        }
        catch (DeployException e)
        {
            _log.Write(Spec.Id, null, "cutover", $"could not start: {e.Message}");
            return e.Message;
        }
        finally
        {
            Launching = false;
            _changed(this);
        }
        return await BecomeReadyAsync(started, $"started {started.Description} at {started.Endpoint} from release {Spec.ReleaseId}", cancellationToken, output);
    }

    /// <summary>
    /// Takes over an instance that already runs (a container a restarted agent found by its labels, or a process the
    /// old agent handed over in an upgrade): checked for readiness like a new one, then supervised. Null, or why it
    /// cannot serve. <paramref name="inRotation"/> false keeps it out of the proxy (a warm blue-green set);
    /// <paramref name="restarts"/> carries the old agent's count on. <paramref name="supervise"/> false: nothing is done
    /// about an exit, a failed health check or max_memory until <see cref="Supervise"/> (an upgrade's new agent before it
    /// commits: until then the old agent may take the instance back, and only one of them may restart it).
    /// </summary>
    public async Task<string?> AdoptAsync(IRunningInstance running, CancellationToken cancellationToken, bool inRotation = true, int restarts = 0, bool supervise = true)
    {
        _enterProxy = inRotation;
        Restarts = restarts;
        var problem = await BecomeReadyAsync(running, $"adopted {running.Description} at {running.Endpoint} (release {Spec.ReleaseId})", cancellationToken);
        if (problem is not null)
        {
            State = InstanceState.Stopped;
            LastProblem = problem;
            Gone = true; // the caller stops what it found
            _changed(this);
            return problem;
        }
        if (supervise) _watch = Task.Run(() => ThreadPoolContext.Run(() => WatchAsync(_stop.Token)));
        else _supervisionDeferred = true;
        _changed(this);
        return null;
    }

    /// <summary>
    /// Starts supervising an instance adopted with supervision deferred. One that exited (or turned unhealthy) meanwhile
    /// is acted on now, as any exit: restarted once.
    /// </summary>
    public void Supervise()
    {
        if (!_supervisionDeferred) return;
        _supervisionDeferred = false;
        _watch = Task.Run(() => ThreadPoolContext.Run(() => WatchAsync(_stop.Token)));
    }

    private async Task<string?> BecomeReadyAsync(IRunningInstance started, string what, CancellationToken cancellationToken, OutputSignal? output = null)
    {
        _process = started;
        _log.Write(Spec.Id, started.Pid, "cutover", what);
        var problem = await _probe.WaitReadyAsync(Spec, _process, cancellationToken, output);
        if (problem is not null)
        {
            _log.Write(Spec.Id, _process?.Pid, "cutover", $"not ready: {problem}");
            return problem;
        }
        if (!Spec.ServesHttp)
        {
            State = InstanceState.Ready;
            // A process type takes no traffic: no backend, nothing in the proxy.
            _log.Write(Spec.Id, _process?.Pid, "cutover", "ready");
            return null;
        }
        _backend = new Backend(Spec.Id, started.Endpoint);
        // A restart takes the dead one's place in the proxy only when the instance is meant to be in rotation.
        if (_enterProxy) _proxy.Pool.Add(_backend);
        State = InstanceState.Ready;
        _log.Write(Spec.Id, _process?.Pid, "cutover", _enterProxy ? "ready; in the proxy" : "ready; out of rotation");
        return null;
    }

    /// <summary>Watches exits, health and memory until stopped; restarts what fails.</summary>
    private async Task WatchAsync(CancellationToken stop)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        var unstable = 0;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                var process = _process!;
                var problem = await NextProblemAsync(process, stop);
                // Start-first only for web: a process type has no capacity to keep, and a singleton must never run twice.
                if (Spec.ServesHttp && problem.StartsWith("memory ", StringComparison.Ordinal) && await ReplaceStartFirstAsync(process, problem, stop))
                    continue;
                unstable = DateTimeOffset.UtcNow - process.Started < Spec.Run.MinUptime ? unstable + 1 : 0;
                if (DateTimeOffset.UtcNow - process.Started > TimeSpan.FromSeconds(30)) backoff = TimeSpan.FromMilliseconds(100);
                Failures++;
                LastProblem = problem;
                _log.Write(Spec.Id, _process?.Pid, "cutover", problem);
                // The agent's pid: during an upgrade two agents write agent.log, and only the owner may act.
                _logger.LogWarning("{Instance}: {Problem} (acted on by agent pid {Agent})", Spec.Id, problem, Environment.ProcessId);
                if (_backend is { } dead) _proxy.Pool.Remove(dead);
                _backend = null;
                State = InstanceState.Restarting;
                await process.StopAsync(Spec.Run.StopSignal, Spec.Run.KillTimeout);
                await process.DisposeAsync();

                while (true)
                {
                    if (unstable > Spec.Run.MaxRestarts)
                    {
                        State = InstanceState.Errored;
                        LastProblem = $"errored: {unstable} exits, each within min_uptime {Config.Duration.Format(Spec.Run.MinUptime)}; last: {LastProblem}";
                        _log.Write(Spec.Id, _process?.Pid, "cutover", LastProblem);
                        _process = null;
                        _changed(this);
                        return;
                    }
                    await Task.Delay(backoff, stop);
                    backoff = backoff * 2 > MaxBackoff ? MaxBackoff : backoff * 2;
                    CountRestart();
                    var launch = await LaunchAsync(stop);
                    if (launch is null) break;
                    LastProblem = launch;
                    unstable++;
                    await _process!.StopAsync(9, TimeSpan.Zero);
                    await _process.DisposeAsync();
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>
    /// Over max_memory: a fresh process is started and made ready first, then the old one drains and stops,
    /// so capacity never dips. False when the replacement could not start (the old one is then restarted).
    /// </summary>
    private async Task<bool> ReplaceStartFirstAsync(IRunningInstance old, string problem, CancellationToken stop)
    {
        _log.Write(Spec.Id, old.Pid, "cutover", $"{problem}: replacing it start-first");
        var oldBackend = _backend;
        var oldSpec = Spec;
        Spec = Spec with { Port = _allocatePort() };
        var launch = await LaunchAsync(stop);
        if (launch is not null)
        {
            _log.Write(Spec.Id, _process?.Pid, "cutover", $"replacement failed: {launch}");
            if (_process is { } failed && failed != old) { await failed.StopAsync(9, TimeSpan.Zero); await failed.DisposeAsync(); }
            _process = old;
            _backend = oldBackend;
            Spec = oldSpec;
            State = InstanceState.Ready;
            return false;
        }
        CountRestart();
        if (oldBackend is not null) await _proxy.DrainAsync(oldBackend, TimeSpan.FromSeconds(30), stop);
        await old.StopAsync(Spec.Run.StopSignal, Spec.Run.KillTimeout);
        await old.DisposeAsync();
        return true;
    }

    /// <summary>Waits until the process exits, fails `retries` health probes in a row, or outgrows max_memory.</summary>
    private async Task<string> NextProblemAsync(IRunningInstance process, CancellationToken stop)
    {
        var failedProbes = 0;
        var lastMemoryCheck = DateTimeOffset.MinValue;
        while (true)
        {
            var tick = Task.Delay(Spec.Health.Interval < TimeSpan.FromSeconds(1) ? Spec.Health.Interval : TimeSpan.FromSeconds(1), stop);
            if (await Task.WhenAny(process.Exited, tick) == process.Exited) return process.ExitDescription();
            stop.ThrowIfCancellationRequested();
            if (process.SaysStopping) return "said STOPPING=1";
            if (DateTimeOffset.UtcNow - process.Started >= Spec.Health.StartPeriod)
            {
                var probe = await _probe.ProbeAsync(Spec, process, stop);
                failedProbes = probe is null ? 0 : failedProbes + 1;
                if (failedProbes >= Spec.Health.Retries) return $"unhealthy after {failedProbes} failed checks: {probe}";
            }
            if (Spec.Run.MaxMemory is { } limit && DateTimeOffset.UtcNow - lastMemoryCheck >= TimeSpan.FromSeconds(1))
            {
                lastMemoryCheck = DateTimeOffset.UtcNow;
                var rss = process.RssBytes();
                if (rss > limit) return $"memory {rss >> 20} MiB above max_memory {limit >> 20} MiB";
            }
        }
    }

    /// <summary>Stops supervising without stopping: a container keeps running for the next agent to adopt.</summary>
    public async Task LetGoAsync()
    {
        _stop.Cancel();
        try { await _watch; } catch (OperationCanceledException) { }
        if (_process is { } running) await running.LetGoAsync();
        // Not Gone, yet without a process: the container runs on, and the next agent finds it by its labels (AdoptAllAsync).
        _process = null;
    }

    /// <summary>
    /// The old agent's side of an upgrade (issue 12): stops supervising without stopping, and lets the process go to
    /// the new agent, which adopts it (<see cref="InstanceProcess.Adopt"/> then <see cref="AdoptAsync"/>). The old
    /// proxy may still route to it until the old agent leaves; stopping this object afterwards drains that and closes
    /// only its own copies of the pipes. Processes only: a container is adopted by its labels instead.
    /// </summary>
    public async Task<InstanceHandover> HandOverAsync()
    {
        if (_process is not InstanceProcess process || State != InstanceState.Ready)
            throw new InvalidOperationException($"{Spec.Id} is {State.ToString().ToLowerInvariant()}{(_process is null or InstanceProcess ? "" : ", not a process")}: only a ready process is handed over");
        _stop.Cancel();
        try { await _watch; } catch (OperationCanceledException) { }
        var handover = await process.HandOverAsync();
        _handedOver = true;
        _log.Write(Spec.Id, process.Pid, "cutover", "handed over to the new agent");
        return handover;
    }

    /// <summary>
    /// The old agent's side of an upgrade for an instance that outlives the agent (a container, which the new agent
    /// adopts by its labels, not from here): supervision stops, so nothing is done about an exit, a failed health check or
    /// max_memory by this agent while the handover is open, nor after it commits (the new agent owns it then). It keeps
    /// running and serving through this agent's proxy. Taken back (<see cref="TakeBackAsync"/>), supervision resumes.
    /// </summary>
    public async Task SuspendForHandoverAsync()
    {
        if (_process is not { } running || State != InstanceState.Ready)
            throw new InvalidOperationException($"{Spec.Id} is {State.ToString().ToLowerInvariant()}: only a ready instance is handed over");
        _stop.Cancel();
        try { await _watch; } catch (OperationCanceledException) { }
        _suspendedForHandover = true;
        if (State != InstanceState.Ready)
        {
            // It failed just before supervision stopped (its restart was cut short): this agent finishes the job.
            await TakeBackAsync();
            throw new InvalidOperationException($"{Spec.Id} is {State.ToString().ToLowerInvariant()}: only a ready instance is handed over");
        }
        _log.Write(Spec.Id, running.Pid, "cutover", "handing over: the new agent supervises it once it commits");
    }

    /// <summary>
    /// The upgrade that <see cref="HandOverAsync"/> or <see cref="SuspendForHandoverAsync"/> was for did not commit:
    /// supervision resumes over the same process (same pipes, reading on where it stopped) or container, as if nothing
    /// happened; an exit meanwhile is acted on now, once. It never left the proxy.
    /// </summary>
    public Task TakeBackAsync()
    {
        if (_suspendedForHandover)
        {
            _suspendedForHandover = false;
            _stop = new CancellationTokenSource();
            _log.Write(Spec.Id, _process?.Pid, "cutover", "taken back: the upgrade did not happen");
            _watch = Task.Run(() => ThreadPoolContext.Run(() => WatchAsync(_stop.Token)));
            return Task.CompletedTask;
        }
        if (!_handedOver || _process is not InstanceProcess process) return Task.CompletedTask;
        _process = process.TakeBack();
        _handedOver = false;
        _stop = new CancellationTokenSource();
        _log.Write(Spec.Id, _process.Pid, "cutover", "taken back: the upgrade did not happen");
        _watch = Task.Run(() => ThreadPoolContext.Run(() => WatchAsync(_stop.Token)));
        return Task.CompletedTask;
    }

    /// <summary>Out of the proxy, in-flight requests finished (up to drain_timeout), then stop_signal, then SIGKILL.</summary>
    public async Task StopAsync(TimeSpan drainTimeout, CancellationToken cancellationToken)
    {
        _stop.Cancel();
        try { await _watch; } catch (OperationCanceledException) { }
        if (_backend is { } backend)
        {
            State = InstanceState.Draining;
            var left = await _proxy.DrainAsync(backend, drainTimeout, cancellationToken);
            if (left > 0) _log.Write(Spec.Id, _process?.Pid, "cutover", $"drain_timeout: closed {left} requests or connections still open");
        }
        if (_process is { } handed && _handedOver)
        {
            await handed.DisposeAsync(); // another agent's now: only our copies of its pipes close
        }
        else if (_process is { } process)
        {
            await process.StopAsync(Spec.Run.StopSignal, Spec.Run.KillTimeout);
            _log.Write(Spec.Id, _process?.Pid, "cutover", $"stopped (exit code {process.ExitCode})");
            await process.DisposeAsync();
        }
        State = InstanceState.Stopped;
        Gone = true;
        _changed(this);
    }

    public async ValueTask DisposeAsync()
    {
        if (State != InstanceState.Stopped) await StopAsync(TimeSpan.Zero, CancellationToken.None);
    }
}
