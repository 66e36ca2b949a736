using Cutover.Progress;

namespace Cutover.Cli.Output;

/// <summary>One plain line per event, for logs, pipes and CI.</summary>
public sealed class PlainProgress(TextWriter output) : IDeployProgress
{
    public void PhaseStarted(string phase) => output.WriteLine($"{phase}: started");

    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) =>
        output.WriteLine($"{phase}: done in {RichProgress.Seconds(elapsed)}{(detail is null ? "" : $" ({detail})")}");

    public void PhaseFailed(string phase, TimeSpan elapsed, string error) =>
        output.WriteLine($"{phase}: failed after {RichProgress.Seconds(elapsed)}: {error}");

    public void Output(string phase, string line) => output.WriteLine($"[{phase}] {line}");

    public void Info(string message) => output.WriteLine(message);

    public void Warning(string message) => output.WriteLine($"warning: {message}");
    // People see each batch as its phase ("batch 1/2") already.
    public void Batch(string process, int number, int of, Cutover.Progress.BatchStep step) { }
}
