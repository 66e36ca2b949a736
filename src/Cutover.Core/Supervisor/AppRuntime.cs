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
    private readonly IInstanceRuntime _runtime;
    private readonly ILoggerFactory _loggers;
    private readonly string _runtimeDir;
    private readonly string _home;
    private Logging.RotatingLogFile? _accessLog;
    /// <summary>Every instance created and not yet gone: the slots, any set a strategy keeps out of rotation, and those a deploy is starting.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<ManagedInstance, byte> _instances = new();

    private AppRuntime(CutoverConfig config, InstanceSettings settings, ProxyServer proxy, LogSink log, ReadinessProbe probe, object spawnGate, ILoggerFactory loggers, string home)
    {
        _home = home;
        Config = config;
        Settings = settings;
        Proxy = proxy;
        Log = log;
        _probe = probe;
        _runtime = settings.Runtime.Open(spawnGate);
        _loggers = loggers;
        _runtimeDir = Path.Combine(home, "run");
        Slots = new ManagedInstance?[settings.Run.Instances];
    }

    public CutoverConfig Config { get; private set; }
    /// <summary>The instance part of <see cref="Config"/> (rolling or blue-green).</summary>
    public InstanceSettings Settings { get; private set; }
    public ProxyServer Proxy { get; }
    public LogSink Log { get; }
    public ManagedInstance?[] Slots { get; }
    public string? ReleaseId { get; set; }
    public string? ReleaseDir { get; set; }

    /// <summary>Instances that run but serve no slot (a warm blue-green set); they go when the app goes.</summary>
    private ManagedInstance[] OutOfRotation => _instances.Keys.Where(i => !Slots.Contains(i)).ToArray();

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
        var settings = config.SettingsOf<InstanceSettings>();
        var proxy = await ProxyServer.StartAsync(config.App, settings.Proxy, listeners, loggers, cancellationToken);
        var log = new LogSink(Path.Combine(home, "logs", config.App), settings.Logs.MaxSize, settings.Logs.Retain);
        var runtime = new AppRuntime(config, settings, proxy, log, new ReadinessProbe(http), spawnGate, loggers, home);
        runtime.ApplyLogSettings();
        proxy.HealthPath = settings.InstanceHealth.Path;
        return runtime;
    }

    /// <summary>Set when the runtime made its own listeners (no agent): it stops them with itself.</summary>
    private ProxyListeners? _ownListeners;

    /// <summary>The logs section, at creation and on every Reconfigure: limits, and the access log switched on or off.</summary>
    private void ApplyLogSettings()
    {
        var logs = Settings.Logs;
        Log.SetLimits(logs.MaxSize, logs.Retain);
        if (logs.AccessLog)
        {
            _accessLog ??= new Logging.RotatingLogFile(Path.Combine(_home, "logs", Config.App, "access", "current.log"), "", logs.MaxSize, logs.Retain);
            _accessLog.SetLimits(logs.MaxSize, logs.Retain);
        }
        Proxy.AccessLog = logs.AccessLog ? _accessLog : null;
    }

    /// <summary>
    /// Takes a changed config (command, env, readiness, rolling settings) for the instances started from now
    /// on, and the proxy's routes, addresses, limits and certificate at once; the number of instances cannot change
    /// under a running app.
    /// </summary>
    public async Task<string?> ReconfigureAsync(CutoverConfig config, CancellationToken cancellationToken)
    {
        if (config.Settings is not InstanceSettings settings)
            return $"strategy changed to {config.Strategy}, which runs no instances; run `cutover stop` first";
        if (settings.Run.Instances != Slots.Length)
            return $"run.instances changed from {Slots.Length} to {settings.Run.Instances}; run `cutover stop` and restart the agent to resize";
        if (_runtime.Reconfigure(settings.Runtime) is { } refused) return refused;
        // Last: it moves the app's routes (and may start or stop a listener), so nothing after it may refuse.
        if (await Proxy.ReconfigureAsync(settings.Proxy, cancellationToken) is { } proxyRefused) return proxyRefused;
        Config = config;
        Settings = settings;
        ApplyLogSettings();
        Proxy.HealthPath = settings.InstanceHealth.Path;
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

    /// <summary>
    /// A new instance for <paramref name="slot"/> on a port the runtime gives (or <paramref name="port"/>: the one an
    /// instance handed over by the old agent listens on); not started yet.
    /// </summary>
    public ManagedInstance NewInstance(int slot, string releaseId, string releaseDir, int? port = null) =>
        new(new InstanceSpec
        {
            App = Config.App,
            Index = slot,
            ReleaseId = releaseId,
            ReleaseDir = releaseDir,
            Port = port ?? _runtime.NewPort(),
            Run = Settings.Run,
            Health = Settings.InstanceHealth,
            RuntimeDir = _runtimeDir,
            Image = _runtime.ImageOf(releaseDir),
            AgentHome = _home,
        }, _probe, Proxy, Log, _runtime.Launcher, _loggers.CreateLogger<ManagedInstance>(), _runtime.NewPort, OnInstanceChanged);

    /// <summary>After an agent restart: what still runs of the release is taken over where the runtime allows it, the rest started.</summary>
    public Task<string?> AdoptAllAsync(string releaseId, string releaseDir, CancellationToken cancellationToken) =>
        _runtime.AdoptAllAsync(this, releaseId, releaseDir, cancellationToken);

    /// <summary>A restarted agent that runs nothing of the app: whatever of it outlived the last agent goes.</summary>
    public Task RemoveLeftoversAsync(CancellationToken cancellationToken) => _runtime.RemoveLeftoversAsync(Config.App, cancellationToken);

    /// <summary>
    /// The agent is going away but the app is not: where the runtime allows it (containers) the slots keep running
    /// and serving, for the next agent to adopt; otherwise everything stops.
    /// </summary>
    public async ValueTask LeaveRunningAsync()
    {
        if (!Settings.Runtime.InstancesOutliveAgent)
        {
            await DisposeAsync();
            return;
        }
        var idle = OutOfRotation;
        foreach (var instance in Slots.Where(s => s is not null)) await instance!.LetGoAsync();
        await Task.WhenAll(idle.Select(i => i.StopAsync(TimeSpan.Zero, CancellationToken.None)));
        await Proxy.DisposeAsync();
        if (_ownListeners is not null) await _ownListeners.DisposeAsync();
        Log.Dispose();
        _accessLog?.Dispose();
        await _runtime.DisposeAsync();
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
        await Task.WhenAll(running.Select(s => s.StopAsync(Settings.Proxy.DrainTimeout, cancellationToken)));
        Array.Clear(Slots);
    }


    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(OutOfRotation.Select(i => i.StopAsync(TimeSpan.Zero, CancellationToken.None)));
        await StopAllAsync(CancellationToken.None);
        await Proxy.DisposeAsync();
        if (_ownListeners is not null) await _ownListeners.DisposeAsync();
        Log.Dispose();
        _accessLog?.Dispose();
        await _runtime.DisposeAsync();
    }
}
