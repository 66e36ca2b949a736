namespace Cutover.Progress;

/// <summary>
/// What a deploy or rollback tells the person (or program) running it. Three renderings exist in the CLI:
/// rich for a terminal, plain lines for logs and pipes, and JSON lines for machines.
/// </summary>
public interface IDeployProgress
{
    void PhaseStarted(string phase);
    void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null);
    void PhaseFailed(string phase, TimeSpan elapsed, string error);
    /// <summary>A line a hook printed.</summary>
    void Output(string phase, string line);
    void Info(string message);
    void Warning(string message);

    /// <summary>
    /// One step of one batch of a rolling update (<paramref name="number"/> of <paramref name="of"/> for the process type
    /// <paramref name="process"/>), timed by whoever receives it: the deploy report marks them on its time axis and
    /// `cutover top` shows the running batch. People already see each batch as its phase ("batch 1/2"), so a renderer
    /// for people may ignore it; a decorator or a writer of the wire must pass it on. No default body on purpose: a
    /// decorator that forgot it (the agent's ActivationPhase did) silently dropped every batch from the report.
    /// </summary>
    void Batch(string process, int number, int of, BatchStep step);
}

/// <summary>
/// Where a batch is: its new instances starting, all of them ready (in the pool), all the old ones drained and stopped,
/// the monitor window over, the batch failed, or the instances replaced so far put back on the previous release
/// (failure_action rollback). With order stop-first a batch is drained before it is ready.
/// </summary>
public enum BatchStep { Started, Ready, Drained, Monitored, Failed, RolledBack }

/// <summary>Discards everything; for callers that only want the result.</summary>
public sealed class SilentProgress : IDeployProgress
{
    public void PhaseStarted(string phase) { }
    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) { }
    public void PhaseFailed(string phase, TimeSpan elapsed, string error) { }
    public void Output(string phase, string line) { }
    public void Info(string message) { }
    public void Warning(string message) { }
    public void Batch(string process, int number, int of, BatchStep step) { }
}
