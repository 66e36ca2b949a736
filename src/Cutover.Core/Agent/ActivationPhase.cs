using System.Text.RegularExpressions;
using Cutover.Progress;

namespace Cutover.Agent;

/// <summary>
/// A running activation as `GET /v1/apps` shows it (`cutover top`): the release it moves to, the phase it last started
/// ("rolling" with its batch, "green", "switch", "monitor", "start", "processes") and since when it runs.
/// </summary>
/// <param name="Kind">deploy, restart or scale: what asked for the activation.</param>
/// <param name="Batch">For a rolling batch: "2/3", or "worker 1/1" for a process type's batches.</param>
public sealed record DeployingView(string Release, string Kind, string? Phase, string? Batch, DateTimeOffset Since);

/// <summary>
/// Passes an activation's progress on unchanged and remembers the phase it is in, so the agent can answer "what is
/// this app's deploy doing" while the activation holds the one-command gate (status requests never wait for it).
/// </summary>
public sealed partial class ActivationPhase(IDeployProgress inner, string release, string kind) : IDeployProgress
{
    // Replaced whole on each phase: progress may be reported from several threads (a batch's instances start together).
    private volatile DeployingView _view = new(release, kind, null, null, DateTimeOffset.UtcNow);

    public DeployingView View => _view;

    public void PhaseStarted(string phase)
    {
        var batch = RollingBatch().Match(phase);
        _view = batch.Success
            ? _view with { Phase = "rolling", Batch = batch.Groups["type"].Success ? $"{batch.Groups["type"].Value} {batch.Groups["n"].Value}" : batch.Groups["n"].Value }
            : _view with { Phase = phase, Batch = null };
        inner.PhaseStarted(phase);
    }

    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) => inner.PhaseCompleted(phase, elapsed, detail);
    public void PhaseFailed(string phase, TimeSpan elapsed, string error) => inner.PhaseFailed(phase, elapsed, error);
    public void Output(string phase, string line) => inner.Output(phase, line);
    public void Info(string message) => inner.Info(message);
    public void Warning(string message) => inner.Warning(message);
    public void Batch(string process, int number, int of, BatchStep step) => inner.Batch(process, number, of, step);

    /// <summary>RollingUpdate's phase names: "batch 1/2" for web, "worker batch 1/1" for a process type.</summary>
    [GeneratedRegex(@"^(?:(?<type>\S+) )?batch (?<n>\d+/\d+)$")]
    private static partial Regex RollingBatch();
}
