using Cutover.Platform;
using Cutover.Config;
using Cutover.Proxy;
using Microsoft.Extensions.Logging;

namespace Cutover.Supervisor;

/// <summary>
/// One app under the agent: its proxy, its log, and one slot per configured instance, each holding the
/// managed instance that currently serves it.
/// </summary>
public sealed class AppRuntime : IAsyncDisposable
{
    private readonly ReadinessProbe _probe;
    private readonly IInstanceLauncher _launcher;
    private readonly Docker.DotNet.DockerClient? _docker;
    private readonly ILoggerFactory _loggers;
    private readonly string _runtimeDir;
    private readonly string _home;
    private Logging.RotatingLogFile? _accessLog;
    /// <summary>Every instance created and not yet gone: the slots, the warm set, and those a deploy is starting.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ManagedInstance, byte> _instances = new();

    private AppRuntime(CutoverConfig config, ProxyServer proxy, LogSink log, ReadinessProbe probe, object spawnGate, ILoggerFactory loggers, string home)
    {
        _home = home;
        Config = config;
        Proxy = proxy;
        Log = log;
        _probe = probe;
        if (config.Runtime == InstanceRuntime.Docker)
        {
            _docker = Containers.DockerClientFactory.Create(config.Docker!.Host);
            _launcher = new Containers.DockerLauncher(_docker, () => Config.Docker!);
        }
        else
        {
            _launcher = new ProcessLauncher(spawnGate);
        }
        _loggers = loggers;
        _runtimeDir = Path.Combine(home, "run");
        Slots = new ManagedInstance?[config.Run!.Instances];
    }

    public CutoverConfig Config { get; private set; }
    public ProxyServer Proxy { get; }
    public LogSink Log { get; }
    public ManagedInstance?[] Slots { get; }
    public string? ReleaseId { get; set; }
    public string? ReleaseDir { get; set; }
    /// <summary>Blue-green: the previous set, running out of rotation for a rollback that is only a switch.</summary>
    public BlueGreen.WarmSet? Warm { get; set; }
    private readonly SemaphoreSlim _warmGate = new(1, 1);

    /// <summary>Stops a warm set when its keep_previous ran out, unless it went live again meanwhile.</summary>
    public async Task ExpireWarmAsync(BlueGreen.WarmSet warm)
    {
        await _warmGate.WaitAsync();
        try
        {
            if (!ReferenceEquals(Warm, warm)) return;
            Warm = null;
            var idle = warm.Instances.Where(i => !Slots.Contains(i)).ToArray();
            await Task.WhenAll(idle.Select(i => i.StopAsync(Config.Proxy!.DrainTimeout, CancellationToken.None)));
        }
        finally
        {
            _warmGate.Release();
        }
    }

    /// <summary>An app with listeners of its own (tests that run one app without an agent).</summary>
    public static async Task<AppRuntime> CreateAsync(CutoverConfig config, string home, HttpClient http, object spawnGate, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var listeners = new ProxyListeners(loggers);
        try
        {
            var runtime = await CreateAsync(config, home, http, spawnGate, loggers, listeners, cancellationToken);
            runtime._ownListeners = listeners;
            return runtime;
        }
        catch
        {
            await listeners.DisposeAsync();
            throw;
        }
    }

    /// <summary>Routes the app on the agent's shared listeners (nothing routed to an instance yet: 503 until one is ready).</summary>
    public static async Task<AppRuntime> CreateAsync(CutoverConfig config, string home, HttpClient http, object spawnGate, ILoggerFactory loggers, ProxyListeners listeners, CancellationToken cancellationToken)
    {
        var proxy = await ProxyServer.StartAsync(config.App, config.Proxy!, listeners, loggers, cancellationToken);
        var log = new LogSink(Path.Combine(home, "logs", config.App), config.Logs.MaxSize, config.Logs.Retain);
        var runtime = new AppRuntime(config, proxy, log, new ReadinessProbe(http), spawnGate, loggers, home);
        runtime.ApplyLogSettings();
        return runtime;
    }

    /// <summary>Set when the runtime made its own listeners (no agent): it stops them with itself.</summary>
    private ProxyListeners? _ownListeners;

    /// <summary>The logs section, at creation and on every Reconfigure: limits, and the access log switched on or off.</summary>
    private void ApplyLogSettings()
    {
        Log.SetLimits(Config.Logs.MaxSize, Config.Logs.Retain);
        if (Config.Logs.AccessLog)
        {
            _accessLog ??= new Logging.RotatingLogFile(Path.Combine(_home, "logs", Config.App, "access", "current.log"), "", Config.Logs.MaxSize, Config.Logs.Retain);
            _accessLog.SetLimits(Config.Logs.MaxSize, Config.Logs.Retain);
        }
        Proxy.AccessLog = Config.Logs.AccessLog ? _accessLog : null;
    }

    /// <summary>
    /// Takes a changed config (command, env, readiness, rolling settings) for the instances started from now
    /// on, and the proxy's routes, addresses, limits and certificate at once; the number of instances cannot change
    /// under a running app.
    /// </summary>
    public async Task<string?> ReconfigureAsync(CutoverConfig config, CancellationToken cancellationToken)
    {
        if (config.Run!.Instances != Slots.Length)
            return $"run.instances changed from {Slots.Length} to {config.Run.Instances}; run `cutover stop` and restart the agent to resize";
        if (await Proxy.ReconfigureAsync(config.Proxy!, cancellationToken) is { } refused) return refused;
        Config = config;
        ApplyLogSettings();
        return null;
    }

    /// <summary>
    /// Raised when an instance is about to start a process, has one, or is gone (from any thread): the agent
    /// writes its state then, so a process never runs that the state does not name.
    /// </summary>
    public event Action<AppRuntime>? InstancesChanged;

    /// <summary>Every instance that runs a process or is starting one, whatever it serves (slot, warm set, a deploy's new one).</summary>
    public IReadOnlyList<ManagedInstance> Running =>
        _instances.Keys.Where(i => !i.Gone && (i.Launching || i.Pid is not null)).OrderBy(i => i.Spec.Index).ToList();

    private void OnInstanceChanged(ManagedInstance instance)
    {
        if (instance.Gone) _instances.TryRemove(instance, out _);
        else _instances.TryAdd(instance, 0);
        InstancesChanged?.Invoke(this);
    }

    /// <summary>A new instance for <paramref name="slot"/> on a fresh loopback port; not started yet.</summary>
    public ManagedInstance NewInstance(int slot, string releaseId, string releaseDir)
    {
        var docker = Config.Runtime == InstanceRuntime.Docker;
        // A container listens on its own address, so every instance can use the same port.
        Func<int> port = docker ? () => Config.Docker!.Port : LoopbackPort.Free;
        return new(new InstanceSpec
        {
            App = Config.App,
            Index = slot,
            ReleaseId = releaseId,
            ReleaseDir = releaseDir,
            Port = port(),
            Run = Config.Run!,
            Health = Config.InstanceHealth,
            RuntimeDir = _runtimeDir,
            Image = docker ? Containers.ContainerRelease.ImageOf(releaseDir) : null,
            AgentHome = _home,
        }, _probe, Proxy, Log, _launcher, _loggers.CreateLogger<ManagedInstance>(), port, OnInstanceChanged);
    }

    /// <summary>
    /// After an agent restart, runtime: docker: the containers of <paramref name="releaseId"/> that still run are
    /// taken over where they are (matched to slots by their labels); slots without one get a new container, and
    /// containers of the app that match no slot (other releases, duplicates, exited ones) are removed.
    /// </summary>
    public async Task<string?> AdoptAllAsync(string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        if (_launcher is not Containers.DockerLauncher docker) return await StartAllAsync(releaseId, releaseDir, cancellationToken);
        var found = await docker.ListAsync(Config.App, cancellationToken);
        var adopted = new ManagedInstance?[Slots.Length];
        foreach (var container in found)
        {
            var labels = new Dictionary<string, string>(container.Labels ?? new Dictionary<string, string>());
            var fits = container.State == "running" && labels.GetValueOrDefault(Containers.ContainerLabels.Release) == releaseId
                && int.TryParse(labels.GetValueOrDefault(Containers.ContainerLabels.Instance), out var slot) && slot >= 0 && slot < Slots.Length && adopted[slot] is null;
            if (!fits)
            {
                await docker.RemoveAsync(container.ID);
                continue;
            }
            var index = int.Parse(labels[Containers.ContainerLabels.Instance], System.Globalization.CultureInfo.InvariantCulture);
            var instance = NewInstance(index, releaseId, releaseDir);
            var running = await docker.AttachAsync(container.ID, (stream, line) => Log.Write(instance.Spec.Id, null, stream, line), cancellationToken);
            if (await instance.AdoptAsync(running, cancellationToken) is { } problem)
            {
                Log.Write(instance.Spec.Id, running.Pid, "cutover", $"not adopted: {problem}");
                await running.StopAsync(Config.Run!.StopSignal, Config.Run.KillTimeout);
                continue;
            }
            adopted[index] = instance;
        }
        for (var i = 0; i < Slots.Length; i++)
        {
            if (adopted[i] is not null) continue;
            var fresh = NewInstance(i, releaseId, releaseDir);
            if (await fresh.StartAsync(cancellationToken) is { } problem) return $"instance {fresh.Spec.Id}: {problem}";
            adopted[i] = fresh;
        }
        for (var i = 0; i < Slots.Length; i++) Slots[i] = adopted[i];
        ReleaseId = releaseId;
        ReleaseDir = releaseDir;
        return null;
    }

    /// <summary>runtime: docker: removes every container of the app (a restarted agent that runs nothing of it). No-op for processes.</summary>
    public async Task RemoveLeftoverContainersAsync(CancellationToken cancellationToken)
    {
        if (_launcher is not Containers.DockerLauncher docker) return;
        foreach (var container in await docker.ListAsync(Config.App, cancellationToken)) await docker.RemoveAsync(container.ID);
    }

    /// <summary>
    /// The agent is going away but the app is not: containers keep running and serving on their network, for the
    /// next agent to adopt. (Processes cannot outlive their supervisor's pipes, so they are stopped instead.)
    /// </summary>
    public async ValueTask LeaveRunningAsync()
    {
        if (_launcher is not Containers.DockerLauncher)
        {
            await DisposeAsync();
            return;
        }
        foreach (var instance in Slots.Where(s => s is not null)) await instance!.LetGoAsync();
        if (Warm is { } warm)
            await Task.WhenAll(warm.Instances.Where(i => !Slots.Contains(i)).Select(i => i.StopAsync(TimeSpan.Zero, CancellationToken.None)));
        await Proxy.DisposeAsync();
        if (_ownListeners is not null) await _ownListeners.DisposeAsync();
        Log.Dispose();
        _accessLog?.Dispose();
        _docker?.Dispose();
    }

    /// <summary>Starts every slot from one release, in parallel. On any failure all are stopped again.</summary>
    public async Task<string?> StartAllAsync(string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        var instances = Enumerable.Range(0, Slots.Length).Select(i => NewInstance(i, releaseId, releaseDir)).ToArray();
        string?[] problems;
        try
        {
            problems = await Task.WhenAll(instances.Select(i => i.StartAsync(cancellationToken)));
        }
        catch (OperationCanceledException)
        {
            // Cancelled: the ones that got ready before it go too, so nothing of an unfinished start keeps running.
            await Task.WhenAll(instances.Select(i => i.StopAsync(TimeSpan.Zero, CancellationToken.None)));
            throw;
        }
        var failed = problems.Select((p, i) => (p, i)).FirstOrDefault(x => x.p is not null);
        if (failed.p is not null)
        {
            await Task.WhenAll(instances.Select(i => i.StopAsync(TimeSpan.Zero, CancellationToken.None)));
            return $"instance {instances[failed.i].Spec.Id}: {failed.p}";
        }
        for (var i = 0; i < Slots.Length; i++) Slots[i] = instances[i];
        ReleaseId = releaseId;
        ReleaseDir = releaseDir;
        return null;
    }

    /// <summary>Drains and stops every instance; the proxy stays up and answers 503.</summary>
    public async Task StopAllAsync(CancellationToken cancellationToken)
    {
        var running = Slots.Where(s => s is not null).Select(s => s!).ToArray();
        await Task.WhenAll(running.Select(s => s.StopAsync(Config.Proxy!.DrainTimeout, cancellationToken)));
        Array.Clear(Slots);
    }


    public async ValueTask DisposeAsync()
    {
        if (Warm is { } warm)
        {
            Warm = null;
            await Task.WhenAll(warm.Instances.Where(i => !Slots.Contains(i)).Select(i => i.StopAsync(TimeSpan.Zero, CancellationToken.None)));
        }
        await StopAllAsync(CancellationToken.None);
        await Proxy.DisposeAsync();
        if (_ownListeners is not null) await _ownListeners.DisposeAsync();
        Log.Dispose();
        _accessLog?.Dispose();
        _docker?.Dispose();
    }
}
