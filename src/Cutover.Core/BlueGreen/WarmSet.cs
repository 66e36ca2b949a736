using Cutover.Platform;
using Cutover.Supervisor;

namespace Cutover.BlueGreen;

/// <summary>The set that served before the last switch, still running out of rotation until <see cref="Until"/>.</summary>
public sealed record WarmSet(string ReleaseId, string ReleaseDir, ManagedInstance[] Instances, DateTimeOffset Until);

/// <summary>
/// Blue-green's state between deploys of one app: its warm set, kept for keep_previous so a rollback to it is a
/// switch. The agent holds one per blue-green app; <see cref="BlueGreenSwitch"/> reads and replaces it.
/// </summary>
public sealed class WarmSetKeeper
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public WarmSet? Current { get; private set; }

    /// <summary>The set just replaced stays up, out of rotation, until <paramref name="keep"/> runs out; an older warm set goes now.</summary>
    public void Keep(AppRuntime app, ManagedInstance[] set, string releaseId, string releaseDir, TimeSpan keep)
    {
        var older = Current;
        var warm = new WarmSet(releaseId, releaseDir, set, DateTimeOffset.UtcNow + keep);
        Current = warm;
        var drain = app.Settings.Proxy.DrainTimeout;
        if (older is not null && !ReferenceEquals(older.Instances, set))
            _ = Task.Run(() => ThreadPoolContext.Run(() => Task.WhenAll(older.Instances.Where(i => !app.Slots.Contains(i)).Select(i => i.StopAsync(drain, CancellationToken.None)))));
        _ = Task.Run(() => ThreadPoolContext.Run(async () =>
        {
            await Task.Delay(keep);
            await ExpireAsync(app, warm);
        }));
    }

    /// <summary>
    /// The warm set the old agent handed over in an upgrade: kept until the same <paramref name="until"/> it had there,
    /// so keep_previous counts from the switch, not from the upgrade.
    /// </summary>
    public void Adopt(AppRuntime app, ManagedInstance[] set, string releaseId, string releaseDir, DateTimeOffset until)
    {
        var warm = new WarmSet(releaseId, releaseDir, set, until);
        Current = warm;
        _ = Task.Run(() => ThreadPoolContext.Run(async () =>
        {
            if (until - DateTimeOffset.UtcNow is { } left && left > TimeSpan.Zero) await Task.Delay(left);
            await ExpireAsync(app, warm);
        }));
    }

    /// <summary>Stops a warm set when its keep_previous ran out, unless it went live again meanwhile.</summary>
    private async Task ExpireAsync(AppRuntime app, WarmSet warm)
    {
        await _gate.WaitAsync();
        try
        {
            if (!ReferenceEquals(Current, warm)) return;
            Current = null;
            var idle = warm.Instances.Where(i => !app.Slots.Contains(i)).ToArray();
            await Task.WhenAll(idle.Select(i => i.StopAsync(app.Settings.Proxy.DrainTimeout, CancellationToken.None)));
        }
        finally
        {
            _gate.Release();
        }
    }
}
