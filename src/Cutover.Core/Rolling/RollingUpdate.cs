using Cutover.Config;
using Cutover.Progress;
using Cutover.Supervisor;

namespace Cutover.Rolling;

public sealed record RollingResult(bool Succeeded, bool RolledBack, int Replaced, IReadOnlyList<string> Failures)
{
    /// <summary>The deploy was cancelled; every replaced instance was put back on the previous release.</summary>
    public bool Cancelled { get; init; }

    public string? Error => Failures.Count == 0 ? null : string.Join("; ", Failures);
}

/// <summary>
/// Replaces an app's instances with ones from another release, `parallelism` at a time, start-first or
/// stop-first, `delay` between batches. A new instance must be ready within ready_timeout and survive
/// `monitor`; otherwise failure_action applies. The proxy only ever routes to ready instances: a new one enters
/// after its readiness check, an old one leaves before it is drained and stopped.
/// </summary>
public sealed class RollingUpdate(AppRuntime app, IDeployProgress progress)
{
    public async Task<RollingResult> RunAsync(string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        var previous = (Id: app.ReleaseId, Dir: app.ReleaseDir);
        try
        {
            return await RollAsync(releaseId, releaseDir, cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && previous.Id is not null)
        {
            // A cancelled deploy never leaves a mixed set: every slot not on the previous release goes back to it,
            // start-first, whatever else is cancelled meanwhile.
            var moved = app.Slots.Count(s => s is null || s.Spec.ReleaseId != previous.Id);
            progress.Warning($"cancelled: returning {moved} instances to release {previous.Id}");
            await RollBackAsync(Enumerable.Range(0, app.Slots.Length), previous.Id, previous.Dir!, CancellationToken.None);
            app.ReleaseId = previous.Id;
            app.ReleaseDir = previous.Dir;
            return new RollingResult(false, true, moved, ["cancelled"]) { Cancelled = true };
        }
    }

    private async Task<RollingResult> RollAsync(string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        var rolling = app.Settings is RollingSettings settings ? settings.Rolling
            : throw new InvalidOperationException($"a rolling update of an app with strategy: {app.Config.Strategy}");
        var previous = (Id: app.ReleaseId, Dir: app.ReleaseDir);
        var slots = Enumerable.Range(0, app.Slots.Length).ToArray();
        var batches = slots.Chunk(rolling.Parallelism).ToArray();
        var failures = new List<string>();
        var replaced = new List<int>();
        var allowed = (int)Math.Floor(rolling.MaxFailureRatio * slots.Length);

        for (var b = 0; b < batches.Length; b++)
        {
            if (b > 0 && rolling.Delay > TimeSpan.Zero) await Task.Delay(rolling.Delay, cancellationToken);
            var batch = batches[b];
            var name = $"batch {b + 1}/{batches.Length}";
            progress.PhaseStarted(name);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var started = await Task.WhenAll(batch.Select(slot => ReplaceAsync(slot, releaseId, releaseDir, rolling.Order, cancellationToken)));
            var batchFailures = started.Where(s => s.Problem is not null).Select(s => $"instance {app.Config.App}-{s.Slot}: {s.Problem}").ToList();
            var fresh = started.Where(s => s.Problem is null).Select(s => s.Slot).ToList();
            replaced.AddRange(fresh);

            if (rolling.Monitor > TimeSpan.Zero && fresh.Count > 0)
                batchFailures.AddRange(await MonitorAsync(fresh, rolling.Monitor, cancellationToken));
            failures.AddRange(batchFailures);

            if (batchFailures.Count == 0)
            {
                progress.PhaseCompleted(name, clock.Elapsed, string.Join(", ", started.Select(s => $"{app.Config.App}-{s.Slot} ready")));
                continue;
            }
            progress.PhaseFailed(name, clock.Elapsed, string.Join("; ", batchFailures));
            if (failures.Count <= allowed || rolling.FailureAction == FailureAction.Continue) continue;
            if (rolling.FailureAction == FailureAction.Rollback && previous.Id is not null)
            {
                progress.Warning($"failure_action rollback: returning {replaced.Count} instances to release {previous.Id}");
                await RollBackAsync(replaced, previous.Id, previous.Dir!, cancellationToken);
                return new RollingResult(false, true, replaced.Count, failures);
            }
            progress.Warning($"failure_action pause: stopped after replacing {replaced.Count} of {slots.Length} instances; the others keep serving release {previous.Id}");
            return new RollingResult(false, false, replaced.Count, failures);
        }

        app.ReleaseId = releaseId;
        app.ReleaseDir = releaseDir;
        return new RollingResult(failures.Count <= allowed, false, replaced.Count, failures);
    }

    /// <summary>One slot: start-first keeps the old instance serving until the new one is ready.</summary>
    private async Task<(int Slot, string? Problem)> ReplaceAsync(int slot, string releaseId, string releaseDir, RollingOrder order, CancellationToken cancellationToken)
    {
        var old = app.Slots[slot];
        var drain = app.Settings.Proxy.DrainTimeout;
        // Stops drain to the end even when the deploy is cancelled: cutting a drain short fails requests.
        if (order == RollingOrder.StopFirst && old is not null)
        {
            await old.StopAsync(drain, CancellationToken.None);
            app.Slots[slot] = null;
        }
        var fresh = app.NewInstance(slot, releaseId, releaseDir);
        var problem = await fresh.StartAsync(cancellationToken);
        if (problem is not null)
        {
            if (order == RollingOrder.StopFirst && old is not null)
            {
                // stop-first left the slot empty: put the old release back in it.
                var again = app.NewInstance(slot, old.Spec.ReleaseId, old.Spec.ReleaseDir);
                if (await again.StartAsync(cancellationToken) is null) app.Slots[slot] = again;
            }
            return (slot, problem);
        }
        progress.Info($"{fresh.Spec.Id}: pid {fresh.Pid} on port {fresh.Spec.Port} ready (release {releaseId})");
        app.Slots[slot] = fresh;
        if (order == RollingOrder.StartFirst && old is not null) await old.StopAsync(drain, CancellationToken.None);
        return (slot, null);
    }

    /// <summary>A new instance that dies or turns unhealthy within the window has failed.</summary>
    private async Task<List<string>> MonitorAsync(IReadOnlyList<int> slots, TimeSpan window, CancellationToken cancellationToken)
    {
        var end = DateTimeOffset.UtcNow + window;
        while (DateTimeOffset.UtcNow < end)
        {
            var bad = slots.Select(s => app.Slots[s]).Where(i => i is null || i.Failures > 0).ToList();
            if (bad.Count > 0)
                return bad.Select(i => $"instance {i?.Spec.Id} failed within monitor {Duration.Format(window)}: {i?.LastProblem}").ToList();
            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
        }
        return [];
    }

    private async Task RollBackAsync(IEnumerable<int> slots, string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        foreach (var slot in slots)
        {
            if (app.Slots[slot] is { } current && current.Spec.ReleaseId == releaseId && current.Failures == 0) continue;
            var result = await ReplaceAsync(slot, releaseId, releaseDir, RollingOrder.StartFirst, cancellationToken);
            if (result.Problem is not null) progress.Warning($"rollback of {app.Config.App}-{slot} failed: {result.Problem}");
        }
    }
}
