using System.Diagnostics;
using Cutover.Config;
using Cutover.Progress;
using Cutover.Supervisor;

namespace Cutover.BlueGreen;

/// <summary>
/// Blue-green: start a whole green set out of rotation, wait until every instance is ready, then move all
/// traffic in one pool change. Blue leaves rotation, finishes its requests and stays running as the warm set
/// for keep_previous, so a rollback to it is a switch, not a start. For `monitor` after the switch, responses
/// >= 500 and failed connections of the green set are counted; above max_error_rate it switches back.
/// Process types (`processes:`) have no traffic to switch: right after the switch each is replaced by the new release's
/// (start-first, a singleton stop-first), and blue's are stopped (stop_signal, kill_timeout), not kept warm; if one of
/// green's fails to start, or the monitor trips, traffic switches back and the process types return to blue's release.
/// </summary>
public sealed class BlueGreenSwitch(AppRuntime app, WarmSetKeeper warmSet, IDeployProgress progress)
{
    private BlueGreenConfig Config => app.Settings is BlueGreenSettings blueGreen ? blueGreen.BlueGreen
        : throw new InvalidOperationException($"a blue-green switch of an app with strategy: {app.Config.Strategy}");

    private NginxRouter? Router => Config is { Router: "nginx", Nginx: { } nginx } ? new NginxRouter(nginx) : null;

    private HaproxyRouter? Haproxy => Config is { Router: "haproxy", Haproxy: { } haproxy } ? new HaproxyRouter(haproxy) : null;

    /// <summary>With router: haproxy, null when HAProxy's socket and backend can be driven; else why not. Checked before anything starts.</summary>
    public async Task<string?> CheckRouterAsync(CancellationToken cancellationToken) =>
        Haproxy is { } haproxy ? await haproxy.CheckAsync(cancellationToken) : null;

    public async Task<string?> RunAsync(string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        var config = Config;
        if (await CheckRouterAsync(cancellationToken) is { } routerProblem) return routerProblem;
        var blue = app.Slots.Select(s => s!).ToArray();
        var blueRelease = (Id: app.ReleaseId!, Dir: app.ReleaseDir!);

        if (warmSet.Current is { } warm && warm.ReleaseId == releaseId && warm.Instances.Length == blue.Length && warm.Instances.All(i => i.State == InstanceState.Ready))
        {
            // Within keep_previous: a switch back, no process starts.
            var clock = Stopwatch.StartNew();
            if (await RouteAsync(warm.Instances, cancellationToken) is { } routeError) return routeError;
            Switch(warm.Instances, blue, releaseId, releaseDir);
            progress.PhaseCompleted("switch", clock.Elapsed, $"traffic back on the warm set of release {releaseId}; no {(app.Groups.Any(g => !g.IsWeb && g.Slots.Length > 0) ? "web " : "")}process started");
            if (await ReplaceProcessTypesAsync(releaseId, releaseDir, cancellationToken) is { } warmProblem)
            {
                await SwitchBackAsync(blue, warm.Instances, blueRelease, stopFrom: false);
                return $"{warmProblem}; switched back to release {blueRelease.Id}";
            }
            warmSet.Keep(app, blue, blueRelease.Id, blueRelease.Dir, config.KeepPrevious);
            return null;
        }

        progress.PhaseStarted("green");
        var started = Stopwatch.StartNew();
        var green = Enumerable.Range(0, blue.Length).Select(i => app.NewInstance(i, releaseId, releaseDir)).ToArray();
        string?[] problems;
        try
        {
            problems = await Task.WhenAll(green.Select(g => g.StartAsync(enterProxy: false, cancellationToken)));
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Green never took traffic; the ones that became ready before the cancel go too.
            await Task.WhenAll(green.Select(g => g.StopAsync(TimeSpan.Zero, CancellationToken.None)));
            var error = $"cancelled while the green set started; blue (release {blueRelease.Id}) keeps serving";
            progress.PhaseFailed("green", started.Elapsed, error);
            return error;
        }
        if (problems.Select((p, i) => (p, i)).FirstOrDefault(x => x.p is not null) is { p: not null } failed)
        {
            await Task.WhenAll(green.Select(g => g.StopAsync(TimeSpan.Zero, CancellationToken.None)));
            var error = $"instance {green[failed.i].Spec.Id} of the green set: {failed.p}; blue (release {blueRelease.Id}) keeps serving";
            progress.PhaseFailed("green", started.Elapsed, error);
            return error;
        }
        progress.PhaseCompleted("green", started.Elapsed, $"{green.Length} instances ready, out of rotation");

        var switchClock = Stopwatch.StartNew();
        if (await RouteAsync(green, cancellationToken) is { } nginxError)
        {
            await Task.WhenAll(green.Select(g => g.StopAsync(TimeSpan.Zero, CancellationToken.None)));
            var error = $"{nginxError}; blue (release {blueRelease.Id}) keeps serving";
            progress.PhaseFailed("switch", switchClock.Elapsed, error);
            return error;
        }
        Switch(green, blue, releaseId, releaseDir);
        progress.PhaseCompleted("switch", switchClock.Elapsed, $"all traffic on release {releaseId}");
        if (await ReplaceProcessTypesAsync(releaseId, releaseDir, cancellationToken) is { } processProblem)
        {
            await SwitchBackAsync(blue, green, blueRelease, stopFrom: true);
            return $"{processProblem}; switched back to release {blueRelease.Id}";
        }

        if (config.Monitor > TimeSpan.Zero)
        {
            progress.PhaseStarted("monitor");
            var monitorClock = Stopwatch.StartNew();
            string? trip;
            try
            {
                // The new process types are watched too: one that dies within the window trips it like a web instance.
                trip = await MonitorAsync(green, [.. green, .. app.Groups.Where(g => !g.IsWeb).SelectMany(g => g.Slots).OfType<ManagedInstance>()], config, cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                trip = "cancelled during the monitor window";
            }
            if (trip is not null)
            {
                var greenBackends = green.Select(g => g.Backend).Where(b => b is not null).Select(b => b!).ToArray();
                // HAProxy forgets a server's counters when it is deleted, so they are read before the switch back.
                var haproxyCounts = Haproxy is { } haproxy ? await haproxy.CountersAsync(green.Select(g => g.Endpoint!), CancellationToken.None) : null;
                await SwitchBackAsync(blue, green, blueRelease, stopFrom: true);
                // Counted again once green has drained, so the total includes requests that were still in flight (Cutover's
                // proxy; HAProxy's count is the one read just before).
                var (errors, responses) = haproxyCounts is { } counts ? (counts.Errors, counts.Responses) : (greenBackends.Sum(b => b.Errors), greenBackends.Sum(b => b.Responses));
                var error = $"{trip}; switched back to release {blueRelease.Id}; in all, green answered " +
                            $"{errors} failed of {responses} requests";
                progress.PhaseFailed("monitor", monitorClock.Elapsed, error);
                return error;
            }
            progress.PhaseCompleted("monitor", monitorClock.Elapsed, "error rate within max_error_rate");
        }
        warmSet.Keep(app, blue, blueRelease.Id, blueRelease.Dir, config.KeepPrevious);
        return null;
    }

    /// <summary>
    /// Each process type's slots to the release traffic just moved to, type by type in config order; null, or the first
    /// failure (the caller switches back, which returns them). A cancel is a failure here: traffic has moved already.
    /// </summary>
    private async Task<string?> ReplaceProcessTypesAsync(string releaseId, string releaseDir, CancellationToken cancellationToken)
    {
        var types = app.Groups.Where(g => !g.IsWeb && g.Slots.Length > 0).ToArray();
        if (types.Length == 0) return null;
        progress.PhaseStarted("processes");
        var clock = Stopwatch.StartNew();
        foreach (var type in types)
        {
            for (var i = 0; i < type.Slots.Length; i++)
            {
                string? problem;
                try
                {
                    problem = await app.ReplaceAsync(type, i, releaseId, releaseDir, RollingOrder.StartFirst, cancellationToken);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    problem = "cancelled while the process types were replaced";
                }
                if (problem is null) continue;
                var error = $"instance {app.Config.App}-{type.Name}-{i} of release {releaseId}: {problem}";
                progress.PhaseFailed("processes", clock.Elapsed, error);
                return error;
            }
        }
        progress.PhaseCompleted("processes", clock.Elapsed, string.Join(", ", types.Select(t => $"{t.Slots.Length} {t.Name}")) + $" on release {releaseId}; the previous ones stopped");
        return null;
    }

    /// <summary>
    /// Traffic back on <paramref name="blue"/> (nginx first), every process type back on blue's release, and
    /// <paramref name="from"/>'s web instances drained and stopped when <paramref name="stopFrom"/> (green; a warm set
    /// switched to stays warm). Never cancelled: it is the way back.
    /// </summary>
    private async Task SwitchBackAsync(ManagedInstance[] blue, ManagedInstance[] from, (string Id, string Dir) blueRelease, bool stopFrom)
    {
        await RouteAsync(blue, CancellationToken.None);
        Switch(blue, from, blueRelease.Id, blueRelease.Dir);
        foreach (var type in app.Groups.Where(g => !g.IsWeb))
            for (var i = 0; i < type.Slots.Length; i++)
                if (type.Slots[i] is not { } current || current.Spec.ReleaseId != blueRelease.Id || current.Failures > 0)
                    if (await app.ReplaceAsync(type, i, blueRelease.Id, blueRelease.Dir, RollingOrder.StartFirst, CancellationToken.None) is { } problem)
                        progress.Warning($"{app.Config.App}-{type.Name}-{i} back to release {blueRelease.Id} failed: {problem}");
        if (stopFrom) await Task.WhenAll(from.Select(g => g.StopAsync(app.Settings.Proxy.DrainTimeout, CancellationToken.None)));
    }

    /// <summary>After the first start of an app: with router: nginx, point nginx at the set that now runs.</summary>
    public Task<string?> RouteLiveSetAsync(CancellationToken cancellationToken) =>
        RouteAsync(app.Slots.Select(s => s!).ToArray(), cancellationToken);

    /// <summary>With router: nginx or haproxy, that router is pointed at the set first; Cutover's own proxy follows in Switch.</summary>
    private async Task<string?> RouteAsync(ManagedInstance[] set, CancellationToken cancellationToken) =>
        Router is { } router ? await router.RouteAsync(set.Select(i => i.Endpoint!), cancellationToken)
        : Haproxy is { } haproxy ? await haproxy.RouteAsync(set.Select(i => i.Endpoint!).ToArray(), app.Settings.Proxy.DrainTimeout, cancellationToken)
        : null;

    /// <summary>One pool change moves every request from one set to the other.</summary>
    private void Switch(ManagedInstance[] to, ManagedInstance[] from, string releaseId, string releaseDir)
    {
        foreach (var i in from) i.InRotation = false;
        foreach (var i in to) i.InRotation = true;
        app.Proxy.Pool.ReplaceAll(to.Select(i => i.Backend).Where(b => b is not null).Select(b => b!));
        for (var s = 0; s < app.Slots.Length; s++) app.Slots[s] = to[s];
        app.ReleaseId = releaseId;
        app.ReleaseDir = releaseDir;
    }

    /// <summary>
    /// The error rate of <paramref name="web"/> (Cutover's proxy's counts, or with router: haproxy HAProxy's per-server
    /// counters as deltas since the window began), and whether any of <paramref name="watched"/> failed.
    /// </summary>
    private async Task<string?> MonitorAsync(ManagedInstance[] web, ManagedInstance[] watched, BlueGreenConfig config, CancellationToken cancellationToken)
    {
        var end = DateTimeOffset.UtcNow + config.Monitor;
        var haproxy = Haproxy;
        var endpoints = web.Select(g => g.Endpoint!).ToArray();
        // HAProxy's counters are cumulative per server and start at 0 at `add server`: green's servers were added by
        // this switch (a name never outlives its instance's port), so the deltas count from their first request on.
        var baseline = (0L, 0L);
        while (DateTimeOffset.UtcNow < end)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
            long responses, errors;
            if (haproxy is not null)
            {
                if (await haproxy.CountersAsync(endpoints, cancellationToken) is not { } now) continue;
                (responses, errors) = (now.Responses - baseline.Item1, now.Errors - baseline.Item2);
            }
            else
            {
                var backends = web.Select(g => g.Backend).Where(b => b is not null).ToArray();
                responses = backends.Sum(b => b!.Responses);
                errors = backends.Sum(b => b!.Errors);
            }
            if (errors > 0 && responses > 0 && (double)errors / responses > config.MaxErrorRate)
                return $"error rate {100.0 * errors / responses:0.##}% ({errors} failed of {responses} responses, status >= 500 or failed connections) " +
                       $"above max_error_rate {config.MaxErrorRate * 100:0.##}%";
            if (watched.FirstOrDefault(g => g.Failures > 0) is { } dead)
                return $"instance {dead.Spec.Id} failed after the switch: {dead.LastProblem}";
        }
        return null;
    }
}
