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
/// after its readiness check, an old one leaves before it is drained and stopped. The web process rolls first,
/// then each process type (`processes:`) in config order by the same rules, a singleton always stop-first; a
/// failure in any type applies failure_action to all of them, so a rollback puts web back too.
/// `cutover restart` is the same update onto the release that runs, for every type or only <paramref name="only"/>.
/// </summary>
/// <param name="only">The process types to replace (null: all).</param>
/// <param name="rules">The rules to roll by, when not the app's `rolling:` (a blue-green app's restart).</param>
public sealed class RollingUpdate(AppRuntime app, IDeployProgress progress, IReadOnlyCollection<string>? only = null, RollingConfig? rules = null)
{
    /// <summary>One slot of one process type.</summary>
    private readonly record struct Slot(ProcessGroup Group, int Index)
    {
        public ManagedInstance? Instance => Group.Slots[Index];
        public string Id(string app) => Group.IsWeb ? $"{app}-{Index}" : $"{app}-{Group.Name}-{Index}";
    }

    private IEnumerable<ProcessGroup> Groups => app.Groups.Where(g => only is null || only.Contains(g.Name));

    private IEnumerable<Slot> AllSlots => Groups.SelectMany(g => Enumerable.Range(0, g.Slots.Length).Select(i => new Slot(g, i)));

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
            // start-first (a singleton stop-first), whatever else is cancelled meanwhile.
            var moved = AllSlots.Count(s => s.Instance is null || s.Instance.Spec.ReleaseId != previous.Id);
            progress.Warning($"cancelled: returning {moved} instances to release {previous.Id}");
            await RollBackAsync(AllSlots, previous.Id, previous.Dir!, CancellationToken.None);
            app.ReleaseId = previous.Id;
            app.ReleaseDir = previous.Dir;
            return new RollingResult(false, true, moved, ["cancelled"]) { Cancelled = true };
        }
    }

    private async Task<RollingResult> RollAsync(string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        var rolling = rules ?? (app.Settings is RollingSettings settings ? settings.Rolling
            : throw new InvalidOperationException($"a rolling update of an app with strategy: {app.Config.Strategy}"));
        var previous = (Id: app.ReleaseId, Dir: app.ReleaseDir);
        // router: haproxy: a socket or backend HAProxy cannot be driven through is refused before any instance starts.
        if (app.Settings is RollingSettings && BlueGreen.HaproxyRouter.For(app.Settings) is { } haproxy && await haproxy.CheckAsync(cancellationToken) is { } refused)
            return new RollingResult(false, false, 0, [refused]);
        var slots = AllSlots.ToArray();
        // Web's batches keep their names ("batch 1/2"); a process type's are named after it ("worker batch 1/1").
        var batches = Groups.SelectMany(g =>
        {
            var chunks = slots.Where(s => s.Group == g).Chunk(rolling.Parallelism).ToArray();
            return chunks.Select((c, i) => (Name: $"{(g.IsWeb ? "" : g.Name + " ")}batch {i + 1}/{chunks.Length}", Slots: c, Process: g.Name, Number: i + 1, Of: chunks.Length));
        }).ToArray();
        var failures = new List<string>();
        var replaced = new List<Slot>();
        var allowed = (int)Math.Floor(rolling.MaxFailureRatio * slots.Length);

        for (var b = 0; b < batches.Length; b++)
        {
            if (b > 0 && rolling.Delay > TimeSpan.Zero) await Task.Delay(rolling.Delay, cancellationToken);
            var (name, batch, process, number, of) = batches[b];
            void Step(BatchStep step) => progress.Batch(process, number, of, step);
            progress.PhaseStarted(name);
            Step(BatchStep.Started);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            // The batch is ready when its last new instance is, drained when its last old one is (each slot calls once).
            var (readyToCome, drainedToCome) = (batch.Length, batch.Length);
            var started = await Task.WhenAll(batch.Select(async slot =>
                (Slot: slot, Problem: await app.ReplaceAsync(slot.Group, slot.Index, releaseId, releaseDir, rolling.Order, cancellationToken,
                    ready: () => { if (Interlocked.Decrement(ref readyToCome) == 0) Step(BatchStep.Ready); },
                    drained: () => { if (Interlocked.Decrement(ref drainedToCome) == 0) Step(BatchStep.Drained); }))));
            var batchFailures = started.Where(s => s.Problem is not null).Select(s => $"instance {s.Slot.Id(app.Config.App)}: {s.Problem}").ToList();
            var fresh = started.Where(s => s.Problem is null).Select(s => s.Slot).ToList();
            foreach (var slot in fresh)
                progress.Info(slot.Group.IsWeb
                    ? $"{slot.Instance!.Spec.Id}: pid {slot.Instance.Pid} on port {slot.Instance.Spec.Port} ready (release {releaseId})"
                    : $"{slot.Instance!.Spec.Id}: pid {slot.Instance.Pid} ready (release {releaseId})");
            replaced.AddRange(fresh);

            if (rolling.Monitor > TimeSpan.Zero && fresh.Count > 0)
            {
                batchFailures.AddRange(await MonitorAsync(fresh, rolling.Monitor, cancellationToken));
                Step(BatchStep.Monitored);
            }
            failures.AddRange(batchFailures);

            if (batchFailures.Count == 0)
            {
                progress.PhaseCompleted(name, clock.Elapsed, string.Join(", ", started.Select(s => $"{s.Slot.Id(app.Config.App)} ready")));
                continue;
            }
            progress.PhaseFailed(name, clock.Elapsed, string.Join("; ", batchFailures));
            Step(BatchStep.Failed);
            if (failures.Count <= allowed || rolling.FailureAction == FailureAction.Continue) continue;
            if (rolling.FailureAction == FailureAction.Rollback && previous.Id is not null)
            {
                progress.Warning($"failure_action rollback: returning {replaced.Count} instances to release {previous.Id}");
                await RollBackAsync(replaced, previous.Id, previous.Dir!, cancellationToken);
                Step(BatchStep.RolledBack);
                return new RollingResult(false, true, replaced.Count, failures);
            }
            progress.Warning($"failure_action pause: stopped after replacing {replaced.Count} of {slots.Length} instances; the others keep serving release {previous.Id}");
            return new RollingResult(false, false, replaced.Count, failures);
        }

        app.ReleaseId = releaseId;
        app.ReleaseDir = releaseDir;
        return new RollingResult(failures.Count <= allowed, false, replaced.Count, failures);
    }

    /// <summary>A new instance that dies or turns unhealthy within the window has failed.</summary>
    private async Task<List<string>> MonitorAsync(IReadOnlyList<Slot> slots, TimeSpan window, CancellationToken cancellationToken)
    {
        var end = DateTimeOffset.UtcNow + window;
        while (DateTimeOffset.UtcNow < end)
        {
            var bad = slots.Where(s => s.Instance is null || s.Instance.Failures > 0).ToList();
            if (bad.Count > 0)
                return bad.Select(s => $"instance {s.Id(app.Config.App)} failed within monitor {Duration.Format(window)}: {s.Instance?.LastProblem}").ToList();
            await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
        }
        return [];
    }

    private async Task RollBackAsync(IEnumerable<Slot> slots, string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        foreach (var slot in slots.ToList())
        {
            if (slot.Instance is { } current && current.Spec.ReleaseId == releaseId && current.Failures == 0) continue;
            var problem = await app.ReplaceAsync(slot.Group, slot.Index, releaseId, releaseDir, RollingOrder.StartFirst, cancellationToken);
            if (problem is not null) progress.Warning($"rollback of {slot.Id(app.Config.App)} failed: {problem}");
        }
    }
}
