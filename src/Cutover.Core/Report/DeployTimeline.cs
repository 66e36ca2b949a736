using System.Diagnostics;
using System.Text.RegularExpressions;
using Cutover.Config;
using Cutover.Progress;

namespace Cutover.Report;

/// <summary>One run of a phase on the report's time axis, in ms from the probe's start.</summary>
public sealed record PhaseSpan(string Name, double StartMs, double EndMs, bool Failed)
{
    public double Seconds => (EndMs - StartMs) / 1000;
}

/// <summary>What a mark on the time axis is: a phase starting, a batch step, the switch, a rollback.</summary>
public enum MarkKind { Phase, Batch, Switch, Rollback }

/// <summary>
/// One moment worth a line on the time axis. <paramref name="Lane"/> is the phase row it belongs to (a batch's steps
/// sit on the row of the batch's phase); <paramref name="Step"/> is set for batch steps.
/// </summary>
public sealed record TimelineMark(double AtMs, string Label, MarkKind Kind, string Lane, BatchStep? Step = null);

/// <summary>
/// The deploy as the report draws it: phases as spans and the moments that explain the probe's charts (each phase
/// starting, each batch started/ready/drained/monitored/failed/rolled back, the switch, a rollback), all in ms from the
/// probe's start, so they share the buckets' time axis.
/// </summary>
public sealed partial record DeployTimeline(IReadOnlyList<PhaseSpan> Phases, IReadOnlyList<TimelineMark> Marks)
{
    public static readonly DeployTimeline Empty = new([], []);

    /// <summary>The phases in order of their first start: one row each on the report.</summary>
    public IReadOnlyList<string> Lanes => Phases.OrderBy(p => p.StartMs).Select(p => p.Name).Distinct().ToList();

    public static DeployTimeline From(IReadOnlyList<RecordedEvent> events, long originTimestamp)
    {
        double Ms(long at) => Stopwatch.GetElapsedTime(originTimestamp, at).TotalMilliseconds;
        var phases = new List<PhaseSpan>();
        var marks = new List<TimelineMark>();
        var open = new Dictionary<string, Stack<double>>();
        foreach (var (at, e) in events)
        {
            var ms = Ms(at);
            switch (e)
            {
                case ProgressEvent.PhaseStarted started:
                    if (!open.TryGetValue(started.Phase, out var starts)) open[started.Phase] = starts = new Stack<double>();
                    starts.Push(ms);
                    if (!IsBatchPhase(started.Phase)) marks.Add(PhaseMark(started.Phase, ms));
                    break;
                case ProgressEvent.PhaseCompleted completed:
                    phases.Add(Close(completed.Phase, ms, completed.Seconds, failed: false));
                    break;
                case ProgressEvent.PhaseFailed failed:
                    phases.Add(Close(failed.Phase, ms, failed.Seconds, failed: true));
                    break;
                case ProgressEvent.Batch batch:
                    var lane = BatchPhase(batch.Process, batch.Number, batch.Of);
                    var label = $"{lane} {StepWord(batch.Step)}";
                    marks.Add(new TimelineMark(ms, label, batch.Step == BatchStep.RolledBack ? MarkKind.Rollback : MarkKind.Batch, lane, batch.Step));
                    break;
            }
        }
        // A phase still open when the report is written (the deploy was cut short) ends at the last event.
        var last = events.Count == 0 ? 0 : Ms(events[^1].Timestamp);
        foreach (var (name, starts) in open)
            while (starts.TryPop(out var start)) phases.Add(new PhaseSpan(name, start, Math.Max(start, last), Failed: false));
        return new DeployTimeline(phases.OrderBy(p => p.StartMs).ToList(), marks.OrderBy(m => m.AtMs).ToList());

        PhaseSpan Close(string name, double endMs, double seconds, bool failed)
        {
            if (open.TryGetValue(name, out var starts) && starts.TryPop(out var start)) return new PhaseSpan(name, start, endMs, failed);
            // A phase reported only once done (blue-green's switch has no start line) began `seconds` before; its mark goes there.
            start = endMs - seconds * 1000;
            if (!IsBatchPhase(name)) marks.Add(PhaseMark(name, start));
            return new PhaseSpan(name, start, endMs, failed);
        }
    }

    /// <summary>The phase name RollingUpdate gives a batch: "batch 1/2" for web, "worker batch 1/1" for a process type.</summary>
    public static string BatchPhase(string process, int number, int of) =>
        $"{(process == ProcessConfigReader.Web ? "" : process + " ")}batch {number}/{of}";

    private static bool IsBatchPhase(string phase) => BatchPhaseName().IsMatch(phase);

    private static TimelineMark PhaseMark(string phase, double ms) => new(ms, phase, phase switch
    {
        "switch" => MarkKind.Switch,
        "rollback" => MarkKind.Rollback,
        _ => MarkKind.Phase,
    }, phase);

    public static string StepWord(BatchStep step) => step switch
    {
        BatchStep.Started => "started",
        BatchStep.Ready => "ready",
        BatchStep.Drained => "drained",
        BatchStep.Monitored => "monitored",
        BatchStep.Failed => "failed",
        _ => "rolled back",
    };

    [GeneratedRegex(@"(^|\s)batch \d+/\d+$")]
    private static partial Regex BatchPhaseName();
}
