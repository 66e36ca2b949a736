using System.Diagnostics;
using Cutover.Progress;

namespace Cutover.Report;

/// <summary>A progress event and when it reached the CLI, as a <see cref="Stopwatch"/> timestamp.</summary>
public readonly record struct RecordedEvent(long Timestamp, ProgressEvent Event);

/// <summary>
/// Passes every progress event on and keeps the ones the deploy report draws (phases and batch steps), each timed on
/// receipt by the clock the probe's buckets are timed by. Events the agent streams are timed when they arrive, which
/// is when they happened give or take the stream's few milliseconds.
/// </summary>
public sealed class TimelineRecorder(IDeployProgress inner) : IDeployProgress
{
    private readonly List<RecordedEvent> _events = [];

    /// <summary>What was recorded so far, in the order it arrived.</summary>
    public IReadOnlyList<RecordedEvent> Events
    {
        get { lock (_events) return _events.ToList(); }
    }

    public void PhaseStarted(string phase)
    {
        Record(new ProgressEvent.PhaseStarted(phase));
        inner.PhaseStarted(phase);
    }

    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null)
    {
        Record(new ProgressEvent.PhaseCompleted(phase, elapsed.TotalSeconds, detail));
        inner.PhaseCompleted(phase, elapsed, detail);
    }

    public void PhaseFailed(string phase, TimeSpan elapsed, string error)
    {
        Record(new ProgressEvent.PhaseFailed(phase, elapsed.TotalSeconds, error));
        inner.PhaseFailed(phase, elapsed, error);
    }

    public void Batch(string process, int number, int of, BatchStep step)
    {
        Record(new ProgressEvent.Batch(process, number, of, step));
        inner.Batch(process, number, of, step);
    }

    public void Output(string phase, string line) => inner.Output(phase, line);
    public void Info(string message) => inner.Info(message);
    public void Warning(string message) => inner.Warning(message);

    private void Record(ProgressEvent e)
    {
        var at = Stopwatch.GetTimestamp();
        lock (_events) _events.Add(new RecordedEvent(at, e));
    }
}
