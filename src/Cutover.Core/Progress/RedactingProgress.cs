using Cutover.Config;

namespace Cutover.Progress;

/// <summary>
/// Every line a deploy reports with the app's secrets replaced by `***` (see <see cref="Redactor"/>): hook output,
/// errors, warnings, what the agent streams back. The pipeline wraps its progress in it, so each renderer (rich,
/// plain, JSON, a fleet host's session) and the release log see only the redacted text.
/// </summary>
public sealed class RedactingProgress(IDeployProgress inner, Redactor redactor) : IDeployProgress
{
    public static IDeployProgress Wrap(IDeployProgress progress, Redactor redactor) =>
        redactor.IsEmpty || progress is RedactingProgress ? progress : new RedactingProgress(progress, redactor);

    public void PhaseStarted(string phase) => inner.PhaseStarted(phase);
    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) => inner.PhaseCompleted(phase, elapsed, redactor.RedactOrNull(detail));
    public void PhaseFailed(string phase, TimeSpan elapsed, string error) => inner.PhaseFailed(phase, elapsed, redactor.Redact(error));
    public void Output(string phase, string line) => inner.Output(phase, redactor.Redact(line));
    public void Info(string message) => inner.Info(redactor.Redact(message));
    public void Warning(string message) => inner.Warning(redactor.Redact(message));
    public void Batch(string process, int number, int of, BatchStep step) => inner.Batch(process, number, of, step);
}
