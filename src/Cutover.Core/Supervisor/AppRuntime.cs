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
    private readonly object _spawnGate;
    private readonly ILoggerFactory _loggers;
    private readonly string _runtimeDir;

    private AppRuntime(CutoverConfig config, ProxyServer proxy, LogSink log, ReadinessProbe probe, object spawnGate, ILoggerFactory loggers, string runtimeDir)
    {
        Config = config;
        Proxy = proxy;
        Log = log;
        _probe = probe;
        _spawnGate = spawnGate;
        _loggers = loggers;
        _runtimeDir = runtimeDir;
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

    /// <summary>Starts the app's proxy (nothing routed yet: it answers 503 until an instance is ready).</summary>
    public static async Task<AppRuntime> CreateAsync(CutoverConfig config, string home, HttpClient http, object spawnGate, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var proxy = await ProxyServer.StartAsync(config.Proxy!.Listen, new BackendPool(), loggers, cancellationToken);
        var log = new LogSink(Path.Combine(home, "logs", config.App));
        return new AppRuntime(config, proxy, log, new ReadinessProbe(http), spawnGate, loggers, Path.Combine(home, "run"));
    }

    /// <summary>
    /// Takes a changed config (command, env, readiness, rolling settings) for the instances started from now
    /// on; the proxy address and the number of instances cannot change under a running app.
    /// </summary>
    public string? Reconfigure(CutoverConfig config)
    {
        if (!config.Proxy!.Listen.Equals(Config.Proxy!.Listen))
            return $"proxy.listen changed from {Config.Proxy.Listen} to {config.Proxy.Listen}; run `cutover stop`, restart the agent, and deploy again";
        if (config.Run!.Instances != Slots.Length)
            return $"run.instances changed from {Slots.Length} to {config.Run.Instances}; run `cutover stop` and restart the agent to resize";
        Config = config;
        return null;
    }

    /// <summary>A new instance for <paramref name="slot"/> on a fresh loopback port; not started yet.</summary>
    public ManagedInstance NewInstance(int slot, string releaseId, string releaseDir) =>
        new(new InstanceSpec
        {
            App = Config.App,
            Index = slot,
            ReleaseId = releaseId,
            ReleaseDir = releaseDir,
            Port = LoopbackPort.Free(),
            Run = Config.Run!,
            Health = Config.InstanceHealth,
            RuntimeDir = _runtimeDir,
        }, _probe, Proxy, Log, _spawnGate, _loggers.CreateLogger<ManagedInstance>(), LoopbackPort.Free);

    /// <summary>Starts every slot from one release, in parallel. On any failure all are stopped again.</summary>
    public async Task<string?> StartAllAsync(string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        var instances = Enumerable.Range(0, Slots.Length).Select(i => NewInstance(i, releaseId, releaseDir)).ToArray();
        var problems = await Task.WhenAll(instances.Select(i => i.StartAsync(cancellationToken)));
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
        Log.Dispose();
    }
}
