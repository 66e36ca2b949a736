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
}

/// <summary>Discards everything; for callers that only want the result.</summary>
public sealed class SilentProgress : IDeployProgress
{
    public void PhaseStarted(string phase) { }
    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) { }
    public void PhaseFailed(string phase, TimeSpan elapsed, string error) { }
    public void Output(string phase, string line) { }
    public void Info(string message) { }
    public void Warning(string message) { }
}
