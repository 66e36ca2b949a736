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

    private AppRuntime(CutoverConfig config, InstanceSettings settings, ProxyServer proxy, LogSink log, ReadinessProbe probe, object spawnGate, ILoggerFactory loggers, string home, IReadOnlyList<string>? roles)
    {
        Roles = roles;
        _home = home;
        Config = config;
        Settings = settings;
        Proxy = proxy;
        Log = log;
        _probe = probe;
        _runtime = settings.Runtime.Open(spawnGate);
        _loggers = loggers;
        _runtimeDir = Path.Combine(home, "run");
        Groups = GroupsFor(settings, roles);
        Slots = Groups[0].Slots;
    }

    /// <summary>
    /// Web first (no slots on a host whose roles exclude web), then each process type that runs on this host, in
    /// config order: a rolling update replaces them in this order.
    /// </summary>
    private static ProcessGroup[] GroupsFor(InstanceSettings settings, IReadOnlyList<string>? roles)
    {
        var web = new ProcessGroup(ProcessConfigReader.Web, settings.Run, singleton: false,
            new ManagedInstance?[ProcessGroup.RunsOn(roles, [ProcessConfigReader.Web]) ? settings.Run.Instances : 0]);
        return [web, .. settings.Processes.Where(p => ProcessGroup.RunsOn(roles, p.Roles))
            .Select(p => new ProcessGroup(p.Name, p.Run, p.Singleton, new ManagedInstance?[p.Run.Instances]))];
    }

    /// <summary>This host's roles (fleet roles: given by the activation); null when there is no fleet, so every process type runs.</summary>
    public IReadOnlyList<string>? Roles { get; }

    /// <summary>Every process type that runs here, web first; <see cref="Slots"/> is the web one's.</summary>
    public IReadOnlyList<ProcessGroup> Groups { get; }

    /// <summary>Whether the web process runs on this host (its roles include web, or there is no fleet).</summary>
    public bool RunsWeb => ProcessGroup.RunsOn(Roles, [ProcessConfigReader.Web]);

    /// <summary>Every slot of every process type, web first.</summary>
    public IEnumerable<ManagedInstance?> AllSlots => Groups.SelectMany(g => g.Slots);

    /// <summary>Nothing of the app runs: a deploy starts every slot instead of replacing.</summary>
    public bool IsEmpty => AllSlots.All(s => s is null);

    public CutoverConfig Config { get; private set; }
    /// <summary>The instance part of <see cref="Config"/> (rolling or blue-green).</summary>
    public InstanceSettings Settings { get; private set; }
    public ProxyServer Proxy { get; }
    public LogSink Log { get; }
    /// <summary>The web process's slots (behind the proxy); a process type's are in <see cref="Groups"/>.</summary>
    public ManagedInstance?[] Slots { get; }
    public string? ReleaseId { get; set; }
    public string? ReleaseDir { get; set; }

    /// <summary>Instances that run but serve no slot (a warm blue-green set); they go when the app goes.</summary>
    private ManagedInstance[] OutOfRotation => _instances.Keys.Where(i => !AllSlots.Contains(i)).ToArray();

    /// <summary>An app with listeners of its own (tests that run one app without an agent).</summary>
    public static async Task<AppRuntime> CreateAsync(CutoverConfig config, string home, HttpClient http, object spawnGate, ILoggerFactory loggers, CancellationToken cancellationToken, IReadOnlyList<string>? roles = null)
    {
        var listeners = new ProxyListeners(loggers);
        try
        {
            var runtime = await CreateAsync(config, home, http, spawnGate, loggers, listeners, cancellationToken, roles);
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
    /// <param name="roles">This host's fleet roles (null: every process type runs); without web, no web instance and no route.</param>
    public static async Task<AppRuntime> CreateAsync(CutoverConfig config, string home, HttpClient http, object spawnGate, ILoggerFactory loggers, ProxyListeners listeners, CancellationToken cancellationToken, IReadOnlyList<string>? roles = null)
    {
        var settings = config.SettingsOf<InstanceSettings>();
        var proxy = ProcessGroup.RunsOn(roles, [ProcessConfigReader.Web])
            ? await ProxyServer.StartAsync(config.App, settings.Proxy, listeners, loggers, cancellationToken)
            : ProxyServer.Unrouted(config.App, settings.Proxy, listeners, loggers);
        var log = new LogSink(Path.Combine(home, "logs", config.App), settings.Logs.MaxSize, settings.Logs.Retain);
        var runtime = new AppRuntime(config, settings, proxy, log, new ReadinessProbe(http), spawnGate, loggers, home, roles);
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
        Log.Redactor = Releases.ReleaseEnvironmentFile.RedactorFor(Config.Root, Config.Environment);
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
        if (RunsWeb && settings.Run.Instances != Slots.Length)
            return $"run.instances changed from {Slots.Length} to {settings.Run.Instances}; run `cutover stop` and restart the agent to resize";
        var groups = GroupsFor(settings, Roles);
        if (!groups.Skip(1).Select(g => (g.Name, g.Slots.Length, g.Singleton)).SequenceEqual(Groups.Skip(1).Select(g => (g.Name, g.Slots.Length, g.Singleton))))
            return $"processes changed (types, instances or singleton) from {Describe(Groups)} to {Describe(groups)}; run `cutover stop` and restart the agent to change them";
        if (_runtime.Reconfigure(settings.Runtime) is { } refused) return refused;
        // Last: it moves the app's routes (and may start or stop a listener), so nothing after it may refuse.
        if (await Proxy.ReconfigureAsync(settings.Proxy, cancellationToken) is { } proxyRefused) return proxyRefused;
        Config = config;
        Settings = settings;
        foreach (var group in Groups) group.Run = groups.First(g => g.Name == group.Name).Run;
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

    private static string Describe(IEnumerable<ProcessGroup> groups) =>
        "[" + string.Join(", ", groups.Skip(1).Select(g => $"{g.Name}: {g.Slots.Length}{(g.Singleton ? " singleton" : "")}")) + "]";

    /// <summary>A new web instance for <paramref name="slot"/> on a port the runtime gives; not started yet.</summary>
    public ManagedInstance NewInstance(int slot, string releaseId, string releaseDir) => NewInstance(Groups[0], slot, releaseId, releaseDir);

    /// <summary>A new instance of <paramref name="group"/>'s process type for <paramref name="slot"/>; a port only for web. Not started yet.</summary>
    public ManagedInstance NewInstance(ProcessGroup group, int slot, string releaseId, string releaseDir) =>
        new(new InstanceSpec
        {
            App = Config.App,
            Index = slot,
            Process = group.Name,
            FileTag = group.IsWeb ? "" : Guid.NewGuid().ToString("N")[..12],
            ReleaseId = releaseId,
            ReleaseDir = releaseDir,
            Port = group.IsWeb ? _runtime.NewPort() : 0,
            Run = group.Run,
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
        foreach (var instance in AllSlots.Where(s => s is not null)) await instance!.LetGoAsync();
        await Task.WhenAll(idle.Select(i => i.StopAsync(TimeSpan.Zero, CancellationToken.None)));
        await Proxy.DisposeAsync();
        if (_ownListeners is not null) await _ownListeners.DisposeAsync();
        Log.Dispose();
        _accessLog?.Dispose();
        await _runtime.DisposeAsync();
    }

    /// <summary>Starts every slot of every process type from one release, in parallel. On any failure all are stopped again.</summary>
    public async Task<string?> StartAllAsync(string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        var slots = Groups.SelectMany(g => Enumerable.Range(0, g.Slots.Length).Select(i => (Group: g, Index: i))).ToArray();
        var instances = slots.Select(s => NewInstance(s.Group, s.Index, releaseId, releaseDir)).ToArray();
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
        for (var i = 0; i < slots.Length; i++) slots[i].Group.Slots[slots[i].Index] = instances[i];
        ReleaseId = releaseId;
        ReleaseDir = releaseDir;
        return null;
    }

    /// <summary>Drains and stops every instance of every process type (each its stop_signal and kill_timeout); the proxy stays up and answers 503.</summary>
    public async Task StopAllAsync(CancellationToken cancellationToken)
    {
        var running = AllSlots.Where(s => s is not null).Select(s => s!).ToArray();
        await Task.WhenAll(running.Select(s => s.StopAsync(Settings.Proxy.DrainTimeout, cancellationToken)));
        foreach (var group in Groups) Array.Clear(group.Slots);
    }

    /// <summary>
    /// Puts an instance of <paramref name="releaseId"/> in one slot: start-first keeps the old one running until the new
    /// one is ready; stop-first (always for a singleton) stops it before, and puts it back if the new one fails. A stop
    /// drains (web) and gives stop_signal and kill_timeout, even when the deploy is cancelled. Null, or why it failed.
    /// </summary>
    public async Task<string?> ReplaceAsync(ProcessGroup group, int slot, string releaseId, string releaseDir, RollingOrder order, CancellationToken cancellationToken)
    {
        order = group.OrderFor(order);
        var old = group.Slots[slot];
        var drain = Settings.Proxy.DrainTimeout;
        // Stops drain to the end even when the deploy is cancelled: cutting a drain short fails requests.
        if (order == RollingOrder.StopFirst && old is not null)
        {
            await old.StopAsync(drain, CancellationToken.None);
            group.Slots[slot] = null;
        }
        var fresh = NewInstance(group, slot, releaseId, releaseDir);
        var problem = await fresh.StartAsync(cancellationToken);
        if (problem is not null)
        {
            if (order == RollingOrder.StopFirst && old is not null)
            {
                // stop-first left the slot empty: put the old release back in it.
                var again = NewInstance(group, slot, old.Spec.ReleaseId, old.Spec.ReleaseDir);
                if (await again.StartAsync(cancellationToken) is null) group.Slots[slot] = again;
            }
            return problem;
        }
        group.Slots[slot] = fresh;
        if (order == RollingOrder.StartFirst && old is not null) await old.StopAsync(drain, CancellationToken.None);
        return null;
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
