using System.Text.Json;


namespace Cutover.Progress;

/// <summary>One JSON object per line (NDJSON); the command's result is the last line, with "event": "result".</summary>
public sealed class JsonProgress(TextWriter output) : IDeployProgress
{
    private readonly object _gate = new();

    public void PhaseStarted(string phase) => Emit(new { @event = "phase_started", phase });

    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) =>
        Emit(new { @event = "phase_completed", phase, seconds = Math.Round(elapsed.TotalSeconds, 4), detail });

    public void PhaseFailed(string phase, TimeSpan elapsed, string error) =>
        Emit(new { @event = "phase_failed", phase, seconds = Math.Round(elapsed.TotalSeconds, 4), error });

    public void Output(string phase, string line) => Emit(new { @event = "output", phase, line });

    public void Info(string message) => Emit(new { @event = "info", message });

    public void Warning(string message) => Emit(new { @event = "warning", message });

    public void Emit(object value)
    {
        var line = JsonSerializer.Serialize(value, Json.Compact);
        lock (_gate)
        {
            output.WriteLine(line);
            output.Flush();
        }
    }
}
