using Cutover.Config;
using Cutover.Deploy;
using Cutover.Progress;
using Cutover.Rolling;
using Cutover.Supervisor;

namespace Cutover.Agent;

/// <summary>
/// `cutover restart` and `cutover scale`: activations on the release that already runs, through the same gate, stream,
/// cancel and state writes as a deploy's.
/// </summary>
public sealed partial class AgentServer
{
    private async Task<ActivationResult> RestartOrScaleAsync(string app, ActivateRequest request, CutoverConfig config, IDeployProgress progress, CancellationToken cancellationToken)
    {
        var what = request.Restart ? "restart" : "scale";
        if (!_apps.TryGetValue(app, out var runtime) || runtime.ReleaseId is null)
            return ActivationResult.NotLive($"the agent runs no release of '{app}' to {what}; deploy it first");
        if (runtime.IsEmpty) return ActivationResult.NotLive($"{app} is stopped; `cutover start` it before a {what}");
        if (runtime.ReleaseId != request.ReleaseId)
            return ActivationResult.NotLive($"{app} runs release {runtime.ReleaseId}, not {request.ReleaseId}");
        // nginx's upstreams (and haproxy's servers) are written at a switch, for a whole set: one instance replaced or added at a time would be missing from them.
        if (runtime.Settings is BlueGreenSettings { BlueGreen.Router: "nginx" or "haproxy" } && (request.Restart ? request.Processes is not { Count: > 0 } only || only.Contains(ProcessConfigReader.Web) : request.Scale!.ContainsKey(ProcessConfigReader.Web)))
            return ActivationResult.NotLive($"{what} of web is not available with router: {((BlueGreenSettings)runtime.Settings).BlueGreen.Router} (its backend is written at a switch); deploy the release again instead");
        // A rolling restart goes through HAProxy slot by slot; a scale would add or remove instances HAProxy never hears of.
        if (runtime.Settings is RollingSettings { Rolling.Haproxy: not null } && !request.Restart && request.Scale!.ContainsKey(ProcessConfigReader.Web))
            return ActivationResult.NotLive($"{what} of web is not available with router: haproxy (HAProxy's servers follow a deploy's slots); change run.instances, `cutover stop`, then deploy");
        var types = runtime.Groups.Where(g => g.Slots.Length > 0 || !g.IsWeb).Select(g => g.Name).ToList();
        var named = request.Restart ? request.Processes ?? [] : request.Scale!.Keys.ToList();
        if (named.FirstOrDefault(n => types.All(t => t != n)) is { } unknown)
            return ActivationResult.NotLive($"{app} runs no process type '{unknown}' on this host; it runs {string.Join(", ", types)}");
        return request.Restart
            ? await RestartAsync(runtime, request, config, progress, cancellationToken)
            : await ScaleAsync(runtime, request.Scale!, progress, cancellationToken);
    }

    /// <summary>
    /// The rolling update onto the running release, start-first by `rolling:` (a singleton stop-first), so every slot
    /// is served throughout. The config is read again first: the instances start with the environment as it is now.
    /// A blue-green app is restarted the same way, one instance at a time, start-first: a second whole set of the same
    /// release would only double the memory for the time of the switch and leave a warm set nothing can switch back to.
    /// </summary>
    private async Task<ActivationResult> RestartAsync(AppRuntime runtime, ActivateRequest request, CutoverConfig config, IDeployProgress progress, CancellationToken cancellationToken)
    {
        var previousConfig = runtime.Config;
        if (await runtime.ReconfigureAsync(config, cancellationToken) is { } refused) return ActivationResult.NotLive(refused);
        var rules = runtime.Settings is RollingSettings rolling ? rolling.Rolling : new RollingConfig { Monitor = TimeSpan.Zero };
        var only = request.Processes is { Count: > 0 } processes ? processes : null;
        var result = await new RollingUpdate(runtime, progress, only, rules).RunAsync(runtime.ReleaseId!, runtime.ReleaseDir!, cancellationToken);
        var release = runtime.ReleaseId;
        ActivationResult outcome = result.Succeeded ? ActivationResult.Live
            : result.Cancelled ? new ActivationResult(ActivationOutcome.Cancelled, $"cancelled; the instances not restarted yet keep running (release {release})")
            : result.Replaced == 0 ? ActivationResult.NotLive($"{result.Error}; no instance was restarted, the running ones keep serving")
            : new ActivationResult(ActivationOutcome.Paused, $"{result.Error}; {result.Replaced} instances restarted, the others kept running (all on release {release})");
        if (outcome.Succeeded && await runtime.ApplySizesAsync(progress, cancellationToken) is { } resizeProblem)
            outcome = ActivationResult.NotLive($"restarted, but changing the process types and counts failed: {resizeProblem}");
        if (!outcome.Succeeded) await runtime.ReconfigureAsync(previousConfig, CancellationToken.None);
        else SaveConfigFiles(runtime, request.Layers);
        SaveInstances(runtime);
        return outcome;
    }

    /// <summary>Each named type to its count, one instance at a time (start, ready, pool; or pool, drain, stop), remembered in the state.</summary>
    private async Task<ActivationResult> ScaleAsync(AppRuntime runtime, IReadOnlyDictionary<string, int> counts, IDeployProgress progress, CancellationToken cancellationToken)
    {
        foreach (var (type, instances) in counts)
        {
            var group = runtime.Groups.First(g => g.Name == type);
            // Checked here too: the CLI checks against its config, the agent against what runs.
            if (group.Singleton && instances > 1) return ActivationResult.NotLive($"{type} is a singleton: at most 1 instance, not {instances}");
            if (group.IsWeb && instances < 1) return ActivationResult.NotLive("web needs at least 1 instance: 0 would leave every request without a backend (`cutover stop` stops the app)");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var from = group.Slots.Length;
            progress.PhaseStarted($"scale {type}");
            string? problem;
            try
            {
                problem = await runtime.ScaleAsync(group, instances, progress, cancellationToken);
            }
            finally
            {
                SaveInstances(runtime);
            }
            if (problem is not null)
            {
                progress.PhaseFailed($"scale {type}", clock.Elapsed, problem);
                return ActivationResult.NotLive(problem);
            }
            progress.PhaseCompleted($"scale {type}", clock.Elapsed, $"{type} {from} -> {instances}");
        }
        return ActivationResult.Live;
    }

    /// <summary>A restart read the config files the CLI named: a later agent restart reads the same ones.</summary>
    private void SaveConfigFiles(AppRuntime runtime, IReadOnlyList<string> configFiles)
    {
        var record = _records.GetValueOrDefault(runtime.Config.App);
        Save(runtime, configFiles, record?.Stopped ?? false);
    }
}
