using System.Text.Json;

namespace Cutover.Progress;

/// <summary>
/// One JSON object per line (NDJSON), each a <see cref="ProgressEvent"/>; the command's result is the last line,
/// with "event": "result" (<see cref="Result{TResult}"/>), or "event": "error" when it failed before it had one.
/// </summary>
public sealed class JsonProgress(TextWriter output) : IDeployProgress
{
    private readonly object _gate = new();

    public void PhaseStarted(string phase) => Emit(new ProgressEvent.PhaseStarted(phase));

    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) =>
        Emit(new ProgressEvent.PhaseCompleted(phase, ProgressEvent.Round(elapsed), detail));

    public void PhaseFailed(string phase, TimeSpan elapsed, string error) =>
        Emit(new ProgressEvent.PhaseFailed(phase, ProgressEvent.Round(elapsed), error));

    public void Output(string phase, string line) => Emit(new ProgressEvent.Output(phase, line));

    public void Info(string message) => Emit(new ProgressEvent.Info(message));

    public void Warning(string message) => Emit(new ProgressEvent.Warning(message));

    public void Batch(string process, int number, int of, BatchStep step) => Emit(new ProgressEvent.Batch(process, number, of, step));

    /// <summary>The failure that ends a command without a result.</summary>
    public void Failed(string kind, IReadOnlyList<string> errors) => Emit(new ProgressEvent.CommandFailed(kind, errors));

    /// <summary>The last line: the stream's own result record, read back by <see cref="ProgressStream{TResult}"/>.</summary>
    public void Result<TResult>(TResult result) where TResult : ResultEvent => WriteLine(ProgressStream<TResult>.Write(result));

    private void Emit(ProgressEvent e) => WriteLine(Json.Write(e, Json.Compact));

    private void WriteLine(string line)
    {
        lock (_gate)
        {
            output.WriteLine(line);
            output.Flush();
        }
    }
}
