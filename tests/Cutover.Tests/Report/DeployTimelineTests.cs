using System.Diagnostics;
using Cutover.Probe;
using Cutover.Progress;
using Cutover.Report;

namespace Cutover.Tests.Report;

/// <summary>
/// The report's model and page from recorded events, without a deploy: phases paired into spans (a phase reported only
/// once done, one never finished), batch steps on their batch's lane, marks in time order, and the page's markers.
/// </summary>
public class DeployTimelineTests
{
    private const long Origin = 1_000_000_000;

    private static RecordedEvent At(double ms, ProgressEvent e) => new(Origin + (long)(ms * Stopwatch.Frequency / 1000), e);

    private static readonly RecordedEvent[] Events =
    [
        At(10, new ProgressEvent.PhaseStarted("stage")),
        At(50, new ProgressEvent.PhaseCompleted("stage", 0.04, null)),
        At(55, new ProgressEvent.PhaseStarted("instances")),
        At(60, new ProgressEvent.PhaseStarted("batch 1/2")),
        At(60, new ProgressEvent.Batch("web", 1, 2, BatchStep.Started)),
        At(90, new ProgressEvent.Batch("web", 1, 2, BatchStep.Ready)),
        At(95, new ProgressEvent.Batch("web", 1, 2, BatchStep.Drained)),
        At(120, new ProgressEvent.Batch("worker", 1, 1, BatchStep.Failed)),
        At(130, new ProgressEvent.PhaseFailed("batch 1/2", 0.07, "instance node-1 exited")),
        At(150, new ProgressEvent.Batch("web", 1, 2, BatchStep.RolledBack)),
        // Blue-green's switch is reported only once done.
        At(200, new ProgressEvent.PhaseCompleted("switch", 0.005, "all traffic on release r2")),
    ];

    [Fact]
    public void Phases_become_spans_and_steps_marks_in_time_order_on_the_probes_clock()
    {
        var timeline = DeployTimeline.From(Events, Origin);

        Assert.Equal(
            [("stage", 10.0, 50.0, false), ("instances", 55.0, 200.0, false), ("batch 1/2", 60.0, 130.0, true), ("switch", 195.0, 200.0, false)],
            timeline.Phases.Select(p => (p.Name, Math.Round(p.StartMs, 3), Math.Round(p.EndMs, 3), p.Failed)));
        Assert.Equal(
            [
                ("stage", MarkKind.Phase, "stage"), ("instances", MarkKind.Phase, "instances"),
                ("batch 1/2 started", MarkKind.Batch, "batch 1/2"), ("batch 1/2 ready", MarkKind.Batch, "batch 1/2"),
                ("batch 1/2 drained", MarkKind.Batch, "batch 1/2"), ("worker batch 1/1 failed", MarkKind.Batch, "worker batch 1/1"),
                ("batch 1/2 rolled back", MarkKind.Rollback, "batch 1/2"), ("switch", MarkKind.Switch, "switch"),
            ],
            timeline.Marks.Select(m => (m.Label, m.Kind, m.Lane)));
        Assert.Equal(195.0, Math.Round(timeline.Marks[^1].AtMs, 3));
        Assert.Equal(["stage", "instances", "batch 1/2", "switch"], timeline.Lanes);
    }

    [Fact]
    public void The_page_lists_every_marker_in_order_and_holds_every_bucket()
    {
        var buckets = Enumerable.Range(0, 3).Select(i => new ProbeBucket(i * 100, i == 2 ? 40 : 100, 10, i, 1.5, 9)).ToList();
        var probe = new ProbeReport(30, 3, new Dictionary<string, long> { ["status_5xx"] = 3 }, new LatencySummary(1.5, 5, 9, 12), null, 0.25, buckets, Origin);
        var report = new DeployReport("Deploy of node release r2", "rolling", [new("Failed", "3", FactTone.Bad)], [new("stage", "0.04 s")], "a <b>reason</b>",
            probe, DeployTimeline.From(Events, Origin));

        var html = HtmlReportWriter.Render(report);

        var markers = System.Text.RegularExpressions.Regex.Matches(html, "data-marker=\"([^\"]+)\"").Select(m => m.Groups[1].Value);
        Assert.Equal(DeployTimeline.From(Events, Origin).Marks.Select(m => m.Label), markers);
        Assert.Equal(3, System.Text.RegularExpressions.Regex.Matches(html, "<g data-ms=").Count);
        Assert.Contains("a &lt;b&gt;reason&lt;/b&gt;", html);
        Assert.Contains("<td data-fact=\"failed\" class=\"bad\">3</td>", html);
        // The last bucket's 10 requests in 40 ms are 250/s, not 100/s: the requests axis reaches 300 (150 if read as 100/s).
        Assert.Contains(">300</text>", html);
    }
}
