using Cutover.Progress;

namespace Cutover.Fleet;

/// <summary>
/// One host's view of the deploy's progress: every phase and message carries the host's name, and hosts working
/// in parallel take turns on the one renderer, so each line is whole.
/// </summary>
public sealed class HostProgress(string host, IDeployProgress inner, Lock gate) : IDeployProgress
{
    public void PhaseStarted(string phase) { lock (gate) inner.PhaseStarted($"{host} {phase}"); }
    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) { lock (gate) inner.PhaseCompleted($"{host} {phase}", elapsed, detail); }
    public void PhaseFailed(string phase, TimeSpan elapsed, string error) { lock (gate) inner.PhaseFailed($"{host} {phase}", elapsed, error); }
    public void Output(string phase, string line) { lock (gate) inner.Output($"{host} {phase}", line); }
    public void Info(string message) { lock (gate) inner.Info($"{host}: {message}"); }
    public void Warning(string message) { lock (gate) inner.Warning($"{host}: {message}"); }
    public void Batch(string process, int number, int of, BatchStep step) { lock (gate) inner.Batch(process, number, of, step); }
}
