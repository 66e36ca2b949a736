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

    private AppRuntime(CutoverConfig config, InstanceSettings settings, ProxyServer proxy, LogSink log, ReadinessProbe probe, object spawnGate, ILoggerFactory loggers, string home, IReadOnlyList<string>? roles, IReadOnlyDictionary<string, ScaledCount>? scaled)
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
        // A scale the config has not changed since stays (an agent restart restores it); one whose type's count changed is forgotten.
        Scaled = StillScaled(settings, scaled);
        _groups = GroupsFor(settings, roles, Scaled);
    }

    /// <summary>
    /// Web first (no slots on a host whose roles exclude web), then each process type that runs on this host, in
    /// config order: a rolling update replaces them in this order.
    /// </summary>
    private static ProcessGroup[] GroupsFor(InstanceSettings settings, IReadOnlyList<string>? roles, IReadOnlyDictionary<string, ScaledCount> scaled)
    {
        int Count(string name, int configured) => scaled.TryGetValue(name, out var s) ? s.Instances : configured;
        var web = new ProcessGroup(ProcessConfigReader.Web, settings.Run, singleton: false,
            new ManagedInstance?[ProcessGroup.RunsOn(roles, [ProcessConfigReader.Web]) ? Count(ProcessConfigReader.Web, settings.Run.Instances) : 0]);
        return [web, .. settings.Processes.Where(p => ProcessGroup.RunsOn(roles, p.Roles))
            .Select(p => new ProcessGroup(p.Name, p.Run, p.Singleton, new ManagedInstance?[Count(p.Name, p.Run.Instances)]))];
    }

    /// <summary>The instances the config asks for of a process type (run.instances for web); null when it has no such type.</summary>
    public static int? ConfiguredInstances(InstanceSettings settings, string type) =>
        type == ProcessConfigReader.Web ? settings.Run.Instances : settings.Processes.FirstOrDefault(p => p.Name == type)?.Run.Instances;

    /// <summary>The scaled counts whose type still exists with the very count they overrode: "until the config changes".</summary>
    private static Dictionary<string, ScaledCount> StillScaled(InstanceSettings settings, IReadOnlyDictionary<string, ScaledCount>? scaled) =>
        (scaled ?? new Dictionary<string, ScaledCount>())
            .Where(s => ConfiguredInstances(settings, s.Key) == s.Value.ConfigInstances)
            .ToDictionary(s => s.Key, s => s.Value, StringComparer.Ordinal);

    /// <summary>Replaced whole, never changed in place: status and state writes read it from other threads while a deploy adds or removes a type.</summary>
    private ProcessGroup[] _groups;

    /// <summary>`cutover scale` counts in force, by process type, with the config's count each overrode.</summary>
    public IReadOnlyDictionary<string, ScaledCount> Scaled { get; private set; }

    /// <summary>What the last ReconfigureAsync changed in the types and counts, applied by <see cref="ApplySizesAsync"/> once the release is live.</summary>
    private (ProcessGroup[] Groups, Dictionary<string, ScaledCount> Scaled)? _pendingSizes;

    /// <summary>This host's roles (fleet roles: given by the activation); null when there is no fleet, so every process type runs.</summary>
    public IReadOnlyList<string>? Roles { get; }

    /// <summary>Every process type that runs here, web first; <see cref="Slots"/> is the web one's.</summary>
    public IReadOnlyList<ProcessGroup> Groups => _groups;

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
    public ManagedInstance?[] Slots => Groups[0].Slots;
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
    /// <param name="scaled">`cutover scale` counts an earlier agent kept (those the config has changed since are dropped).</param>
    public static async Task<AppRuntime> CreateAsync(CutoverConfig config, string home, HttpClient http, object spawnGate, ILoggerFactory loggers, ProxyListeners listeners, CancellationToken cancellationToken, IReadOnlyList<string>? roles = null, IReadOnlyDictionary<string, ScaledCount>? scaled = null)
    {
        var settings = config.SettingsOf<InstanceSettings>();
        var proxy = ProcessGroup.RunsOn(roles, [ProcessConfigReader.Web])
            ? await ProxyServer.StartAsync(config.App, settings.Proxy, listeners, loggers, cancellationToken)
            : ProxyServer.Unrouted(config.App, settings.Proxy, listeners, loggers);
        var log = new LogSink(Path.Combine(home, "logs", config.App), settings.Logs.MaxSize, settings.Logs.Retain);
        var runtime = new AppRuntime(config, settings, proxy, log, new ReadinessProbe(http), spawnGate, loggers, home, roles, scaled);
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
    /// on, and the proxy's routes, addresses, limits and certificate at once. Changed instance counts and added or
    /// removed process types are kept for <see cref="ApplySizesAsync"/>; only a type turning singleton or back is refused.
    /// </summary>
    public async Task<string?> ReconfigureAsync(CutoverConfig config, CancellationToken cancellationToken)
    {
        if (config.Settings is not InstanceSettings settings)
            return $"strategy changed to {config.Strategy}, which runs no instances; run `cutover stop` first";
        var scaled = StillScaled(settings, Scaled);
        var groups = GroupsFor(settings, Roles, scaled);
        // The one change that cannot be made live: a singleton's promise (never two at once) would not hold while its
        // instances are replaced under the other rule, and a type that becomes one would have to shrink first.
        if (groups.FirstOrDefault(g => Groups.Any(o => o.Name == g.Name && o.Singleton != g.Singleton)) is { } flipped)
            return $"processes.{flipped.Name}.singleton changed to {(flipped.Singleton ? "true" : "false")}, which cannot change while it runs (never two at once would not hold during the change); " +
                   $"rename the type (the old one is stopped, the new one started) or run `cutover stop` first";
        // nginx's upstreams are written at a switch, for a whole set: an instance added or drained between switches would
        // be missing from nginx, or stay in it after it stopped. HAProxy's servers likewise follow switches and slots only.
        if ((settings is BlueGreenSettings { BlueGreen.Router: "nginx" or "haproxy" } || BlueGreen.HaproxyRouter.For(settings) is not null) && RunsWeb && groups[0].Slots.Length != Slots.Length)
            return $"web instances changed from {Slots.Length} to {groups[0].Slots.Length}, which " +
                   (settings is BlueGreenSettings bg ? $"blue_green.router: {bg.BlueGreen.Router} cannot follow live (its upstreams are written at the switch)"
                       : "router: haproxy cannot follow live (HAProxy's servers follow a deploy's slots, not a resize)") + "; run `cutover stop` first";
        if (_runtime.Reconfigure(settings.Runtime) is { } refused) return refused;
        // Last: it moves the app's routes (and may start or stop a listener), so nothing after it may refuse.
        if (await Proxy.ReconfigureAsync(settings.Proxy, cancellationToken) is { } proxyRefused) return proxyRefused;
        Config = config;
        Settings = settings;
        foreach (var group in Groups)
            if (groups.FirstOrDefault(g => g.Name == group.Name) is { } changed) group.Run = changed.Run;
        _pendingSizes = (groups, scaled);
        ApplyLogSettings();
        Proxy.HealthPath = settings.InstanceHealth.Path;
        return null;
    }

    /// <summary>
    /// Raised when an instance is about to start a process, has one, or is gone (from any thread): the agent
    /// writes its state then, so a process never runs that the state does not name.
    /// </summary>
    public event Action<AppRuntime>? InstancesChanged;

    /// <summary>Supervision restarted an instance: (app, process type), for the agent's metrics.</summary>
    public event Action<string, string>? InstanceRestarted;

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
    /// After a deploy's release is live (or at a restart, the one that runs): the types and counts its config asks for
    /// (scaled counts the config left alone stay). Removed types are stopped, new ones started, the others resized
    /// one instance at a time; null, or the first problem (then what could not start is not left running).
    /// </summary>
    public async Task<string?> ApplySizesAsync(Progress.IDeployProgress progress, CancellationToken cancellationToken)
    {
        if (_pendingSizes is not { } pending) return null;
        _pendingSizes = null;
        Scaled = pending.Scaled;
        foreach (var gone in _groups.Where(g => !g.IsWeb && pending.Groups.All(t => t.Name != g.Name)).ToArray())
        {
            if (await ResizeAsync(gone, 0, progress, cancellationToken) is { } problem) return problem;
            _groups = _groups.Where(g => g != gone).ToArray();
            progress.Info($"process type {gone.Name} removed from the config: its instances stopped");
        }
        foreach (var target in pending.Groups)
        {
            var group = _groups.FirstOrDefault(g => g.Name == target.Name);
            if (group is null)
            {
                group = new ProcessGroup(target.Name, target.Run, target.Singleton, []);
                _groups = [.. _groups, group];
                progress.Info($"process type {group.Name} added by the config: starting {target.Slots.Length}");
            }
            if (await ResizeAsync(group, target.Slots.Length, progress, cancellationToken) is { } problem) return problem;
        }
        // Config order, web first: the order a rolling update replaces them in.
        _groups = _groups.OrderBy(g => Array.FindIndex(pending.Groups, t => t.Name == g.Name)).ToArray();
        return null;
    }

    /// <summary>
    /// `cutover scale`: <paramref name="group"/> to <paramref name="instances"/>, remembered (with the config's count it
    /// overrides) until the config's count changes. Null, or why it could not (then the count stays as it was).
    /// </summary>
    public async Task<string?> ScaleAsync(ProcessGroup group, int instances, Progress.IDeployProgress progress, CancellationToken cancellationToken)
    {
        if (await ResizeAsync(group, instances, progress, cancellationToken) is { } problem) return problem;
        var configured = ConfiguredInstances(Settings, group.Name)!.Value;
        var scaled = new Dictionary<string, ScaledCount>(Scaled, StringComparer.Ordinal);
        if (instances == configured) scaled.Remove(group.Name);
        else scaled[group.Name] = new ScaledCount(instances, configured);
        Scaled = scaled;
        return null;
    }

    /// <summary>
    /// Adds instances one by one (start, ready, into the pool) from the running release, or removes them one by one from
    /// the end (out of the pool, drained, stopped). An added one that cannot start fails the resize: the ones this call
    /// added are stopped again, so the type keeps the count it had.
    /// </summary>
    public async Task<string?> ResizeAsync(ProcessGroup group, int instances, Progress.IDeployProgress progress, CancellationToken cancellationToken)
    {
        var from = group.Slots.Length;
        while (group.Slots.Length > instances)
        {
            var last = group.Slots.Length - 1;
            var leaving = group.Slots[last];
            // Out of the slots first: nothing (status, a restart) takes it for a serving one while it drains.
            group.Slots = group.Slots[..last];
            if (leaving is not null)
            {
                // Never cut short: a drain cut short fails requests.
                await leaving.StopAsync(Settings.Proxy.DrainTimeout, CancellationToken.None);
                progress.Info($"{leaving.Spec.Id}: drained and stopped");
            }
        }
        if (group.Slots.Length >= instances) return null;
        if (ReleaseId is null || ReleaseDir is null) return $"{group.Name}: no release runs to start instances of";
        while (group.Slots.Length < instances)
        {
            var index = group.Slots.Length;
            var fresh = NewInstance(group, index, ReleaseId, ReleaseDir);
            string? problem;
            try
            {
                problem = await fresh.StartAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                await fresh.StopAsync(TimeSpan.Zero, CancellationToken.None);
                problem = "cancelled";
            }
            if (problem is not null)
            {
                progress.Warning($"{group.SlotId(Config.App, index)} did not start ({problem}); stopping the {index - from} added before it");
                await ResizeAsync(group, from, progress, CancellationToken.None);
                if (cancellationToken.IsCancellationRequested) throw new OperationCanceledException(cancellationToken);
                return $"instance {group.SlotId(Config.App, index)}: {problem}; {group.Name} stays at {from}";
            }
            group.Slots = [.. group.Slots, fresh];
            progress.Info(fresh.Spec.ServesHttp
                ? $"{fresh.Spec.Id}: pid {fresh.Pid} on port {fresh.Spec.Port} ready (release {ReleaseId})"
                : $"{fresh.Spec.Id}: pid {fresh.Pid} ready (release {ReleaseId})");
        }
        return null;
    }

    /// <summary>A new web instance for <paramref name="slot"/> on a port the runtime gives; not started yet.</summary>
    public ManagedInstance NewInstance(int slot, string releaseId, string releaseDir) => NewInstance(Groups[0], slot, releaseId, releaseDir);

    /// <summary>
    /// A new instance of <paramref name="group"/>'s process type for <paramref name="slot"/>; a port only for web: one the
    /// runtime gives, or <paramref name="port"/> (the one an instance handed over by the old agent listens on). Not started yet.
    /// </summary>
    public ManagedInstance NewInstance(ProcessGroup group, int slot, string releaseId, string releaseDir, int? port = null) =>
        new(new InstanceSpec
        {
            App = Config.App,
            Index = slot,
            Process = group.Name,
            FileTag = group.IsWeb ? "" : Guid.NewGuid().ToString("N")[..12],
            ReleaseId = releaseId,
            ReleaseDir = releaseDir,
            Port = port ?? (group.IsWeb ? _runtime.NewPort() : 0),
            Run = group.Run,
            Health = Settings.InstanceHealth,
            RuntimeDir = _runtimeDir,
            Image = _runtime.ImageOf(releaseDir),
            AgentHome = _home,
        }, _probe, Proxy, Log, _runtime.Launcher, _loggers.CreateLogger<ManagedInstance>(), _runtime.NewPort, OnInstanceChanged)
        {
            Restarted = instance => InstanceRestarted?.Invoke(Config.App, instance.Spec.Process),
        };

    /// <summary>
    /// After an agent restart: what still runs of the release is taken over where the runtime allows it, the rest started.
    /// <paramref name="handover"/>: an upgrade's new agent before the commit (see <see cref="IInstanceRuntime.AdoptAllAsync"/>).
    /// </summary>
    public Task<string?> AdoptAllAsync(string releaseId, string releaseDir, CancellationToken cancellationToken, ContainerHandover? handover = null) =>
        _runtime.AdoptAllAsync(this, releaseId, releaseDir, cancellationToken, handover);

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
    /// <param name="ready">Called once the new instance is ready (and in the pool), <paramref name="drained"/> once the old one
    /// has drained and stopped (at once when the slot was empty): a rolling update reports its batches' steps by them.</param>
    public async Task<string?> ReplaceAsync(ProcessGroup group, int slot, string releaseId, string releaseDir, RollingOrder order, CancellationToken cancellationToken,
        Action? ready = null, Action? drained = null)
    {
        order = group.OrderFor(order);
        var old = group.Slots[slot];
        var drain = Settings.Proxy.DrainTimeout;
        // Rolling with router: haproxy: HAProxy's backend follows the slot (a new server in once ready, the old one
        // drained out of HAProxy before its process stops). Blue-green's web moves by whole sets in BlueGreenSwitch.
        var haproxy = group.IsWeb && Settings is RollingSettings ? BlueGreen.HaproxyRouter.For(Settings) : null;
        // Stops drain to the end even when the deploy is cancelled: cutting a drain short fails requests.
        if (order == RollingOrder.StopFirst && old is not null)
        {
            if (haproxy is not null && old.Endpoint is { } leaving) await haproxy.RemoveAsync(leaving, drain, CancellationToken.None);
            await old.StopAsync(drain, CancellationToken.None);
            group.Slots[slot] = null;
            drained?.Invoke();
        }
        var fresh = NewInstance(group, slot, releaseId, releaseDir);
        var problem = await fresh.StartAsync(cancellationToken);
        if (problem is null && haproxy is not null && await haproxy.AddAsync(fresh.Endpoint!, cancellationToken) is { } refused)
        {
            await fresh.StopAsync(TimeSpan.Zero, CancellationToken.None);
            problem = refused;
        }
        if (problem is not null)
        {
            if (order == RollingOrder.StopFirst && old is not null)
            {
                // stop-first left the slot empty: put the old release back in it.
                var again = NewInstance(group, slot, old.Spec.ReleaseId, old.Spec.ReleaseDir);
                if (await again.StartAsync(cancellationToken) is null
                    && (haproxy is null || await haproxy.AddAsync(again.Endpoint!, CancellationToken.None) is null)) group.Slots[slot] = again;
            }
            return problem;
        }
        group.Slots[slot] = fresh;
        ready?.Invoke();
        if (order == RollingOrder.StartFirst && old is not null)
        {
            if (haproxy is not null && old.Endpoint is { } leaving) await haproxy.RemoveAsync(leaving, drain, CancellationToken.None);
            await old.StopAsync(drain, CancellationToken.None);
        }
        if (order == RollingOrder.StartFirst || old is null) drained?.Invoke();
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

/// <summary>A `cutover scale` count and the config's count it overrode (the scale holds while the config still says that).</summary>
public sealed record ScaledCount(int Instances, int ConfigInstances);
