using System.Globalization;
using System.Net;
using System.Text;
using Cutover.Probe;
using Cutover.Progress;

namespace Cutover.Report;

/// <summary>
/// The report's charts as inline SVG, drawn here so the page needs nothing from elsewhere: the phase lanes, requests
/// per second (answered and failed, stacked) and p50/p99 latency, all on one time axis so a marker in the lanes sits
/// above the buckets it explains. Every number is written with the invariant culture (SVG's).
/// </summary>
public static class SvgChartWriter
{
    public const double Width = 1100;
    private const double Left = 190, Right = 24;
    private const double PlotWidth = Width - Left - Right;
    private const double LaneHeight = 18;

    /// <summary>The one palette: colour-blind-safe blue and orange for the series, red kept for failures only.</summary>
    public static class Colours
    {
        public const string Answered = "#4e79a7";
        public const string Failed = "#d62728";
        public const string P50 = "#4e79a7";
        public const string P99 = "#f28e2b";
        public const string Phase = "#8fa9c8";
        public const string Batch = "#59a89c";
        public const string Ready = "#2e7d32";
        public const string Drained = "#6b7280";
        public const string Monitor = "#f2cf5b";
        public const string Switch = "#1f2328";
        public const string Grid = "#e5e7eb";
        public const string Axis = "#6b7280";
        public const string Text = "#1f2328";
    }

    /// <summary>Milliseconds from the probe's start -> x, over the whole probe and every phase.</summary>
    public sealed record TimeAxis(double StartMs, double EndMs)
    {
        public static TimeAxis For(DeployReport report)
        {
            var start = Math.Min(0, report.Timeline.Phases.Select(p => p.StartMs).DefaultIfEmpty(0).Min());
            var end = Math.Max(report.Probe.Seconds * 1000, report.Timeline.Phases.Select(p => p.EndMs).DefaultIfEmpty(0).Max());
            end = Math.Max(end, report.Probe.Buckets.Count * ProbeBucket.Width.TotalMilliseconds);
            return new TimeAxis(start, Math.Max(end, start + 100));
        }

        public double X(double ms) => Left + (ms - StartMs) / (EndMs - StartMs) * PlotWidth;

        /// <summary>Tick times in ms: a round step giving about ten ticks.</summary>
        public IEnumerable<double> Ticks()
        {
            var step = NiceStep((EndMs - StartMs) / 10);
            for (var t = Math.Ceiling(StartMs / step) * step; t <= EndMs + 1e-6; t += step) yield return t;
        }
    }

    /// <summary>One row per phase (in order of first start), each run a bar; a batch's steps as symbols on its row.</summary>
    public static string Lanes(DeployTimeline timeline, TimeAxis axis)
    {
        var lanes = timeline.Lanes;
        var top = 8.0;
        var height = top + lanes.Count * LaneHeight + 34;
        var svg = new Svg(height, "Deploy phases and batch steps over time");
        svg.TimeGrid(axis, top, top + lanes.Count * LaneHeight);
        for (var i = 0; i < lanes.Count; i++)
        {
            var y = top + i * LaneHeight;
            var runs = timeline.Phases.Where(p => p.Name == lanes[i]).ToList();
            var batch = timeline.Marks.Any(m => m.Lane == lanes[i] && m.Kind != MarkKind.Phase && m.Step is not null);
            svg.Text(Left - 8, y + 14, $"{lanes[i]}  {runs.Sum(r => r.Seconds).ToString("0.00", CultureInfo.InvariantCulture)} s", anchor: "end", size: 12,
                weight: runs.Any(r => r.Failed) ? "600" : null, fill: runs.Any(r => r.Failed) ? Colours.Failed : Colours.Text);
            foreach (var run in runs)
            {
                var x = axis.X(run.StartMs);
                // A phase of a few ms is still drawn 2 px wide, so the switch shows.
                var w = Math.Max(2, axis.X(run.EndMs) - x);
                svg.Rect(x, y + 4, w, LaneHeight - 8, run.Failed ? Colours.Failed : batch ? Colours.Batch : Colours.Phase, rx: 2,
                    title: $"{run.Name}: {Seconds(run.StartMs)} to {Seconds(run.EndMs)}{(run.Failed ? " (failed)" : "")}");
            }
            var steps = timeline.Marks.Where(m => m.Lane == lanes[i] && m.Step is not null).ToList();
            // The monitor window: from the batch drained (its instances all new) to the window's end.
            if (steps.FirstOrDefault(m => m.Step == BatchStep.Drained) is { } drained && steps.FirstOrDefault(m => m.Step == BatchStep.Monitored) is { } monitored)
                svg.Rect(axis.X(drained.AtMs), y + 4, Math.Max(1, axis.X(monitored.AtMs) - axis.X(drained.AtMs)), LaneHeight - 8, Colours.Monitor, rx: 2,
                    title: $"{lanes[i]} monitor window: {Seconds(drained.AtMs)} to {Seconds(monitored.AtMs)}");
            foreach (var step in steps) svg.StepSymbol(axis.X(step.AtMs), y + LaneHeight / 2, step);
        }
        svg.TimeAxisLabels(axis, top + lanes.Count * LaneHeight);
        return svg.ToString();
    }

    /// <summary>Requests per second in each 100 ms bucket by the time they were sent: answered below, failed stacked on top in red.</summary>
    public static string Requests(IReadOnlyList<ProbeBucket> buckets, DeployTimeline timeline, TimeAxis axis)
    {
        const double top = 18, plot = 130;
        var max = Math.Max(1, buckets.Select(b => b.RequestsPerSecond).DefaultIfEmpty(0).Max());
        var step = NiceStep(max / 4);
        // Headroom above the highest bar, so a steady rate does not read as a clipped one.
        var yMax = Math.Ceiling(max * 1.08 / step) * step;
        double Y(double v) => top + plot - v / yMax * plot;
        var svg = new Svg(top + plot + 34, "Requests per second, answered and failed, per 100 ms");
        svg.TimeGrid(axis, top, top + plot);
        for (var v = 0.0; v <= yMax + 1e-9; v += step)
        {
            svg.Line(Left, Y(v), Left + PlotWidth, Y(v), Colours.Grid);
            svg.Text(Left - 8, Y(v) + 4, v.ToString("0.##", CultureInfo.InvariantCulture), anchor: "end", size: 11, fill: Colours.Axis);
        }
        svg.Text(Left - 52, top + plot / 2, "requests/s", anchor: "middle", size: 12, fill: Colours.Axis, rotate: true);
        svg.RollbackSpans(timeline, axis, top, top + plot, labelled: true);
        foreach (var b in buckets)
        {
            var x = axis.X(b.StartMs);
            var barWidth = Math.Max(0.5, axis.X(b.StartMs + b.WidthMs) - x - 0.5);
            var answered = b.RequestsPerSecond - b.FailedPerSecond;
            var failed = b.FailedPerSecond;
            // Each bucket's counts as data, so the page says exactly what it draws (the report's test adds them up).
            svg.Raw($"<g data-ms=\"{N(b.StartMs)}\" data-requests=\"{b.Requests}\" data-failed=\"{b.Failed}\">");
            if (answered > 0) svg.Rect(x, Y(answered), barWidth, Y(0) - Y(answered), Colours.Answered);
            if (failed > 0)
                svg.Rect(x, Y(answered + failed), barWidth, Y(answered) - Y(answered + failed), Colours.Failed,
                    title: $"{Seconds(b.StartMs)}: {b.Failed} of {b.Requests} requests failed");
            svg.Raw("</g>");
        }
        svg.Markers(timeline, axis, top, top + plot, labelled: true);
        svg.Line(Left, Y(0), Left + PlotWidth, Y(0), Colours.Axis);
        svg.TimeAxisLabels(axis, top + plot);
        return svg.ToString();
    }

    /// <summary>p50 and p99 latency of each bucket, on a log scale (a stall is 100x the usual, not 2x).</summary>
    public static string Latency(IReadOnlyList<ProbeBucket> buckets, DeployTimeline timeline, TimeAxis axis)
    {
        const double top = 18, plot = 130;
        var values = buckets.SelectMany(b => new[] { b.P50Ms, b.P99Ms }).OfType<double>().Where(v => v > 0).ToList();
        var low = Math.Pow(10, Math.Floor(Math.Log10(Math.Max(0.01, values.DefaultIfEmpty(1).Min()))));
        var high = Math.Pow(10, Math.Ceiling(Math.Log10(Math.Max(low * 10, values.DefaultIfEmpty(10).Max()))));
        double Y(double ms) => top + plot - (Math.Log10(Math.Max(low, ms)) - Math.Log10(low)) / (Math.Log10(high) - Math.Log10(low)) * plot;
        var svg = new Svg(top + plot + 34, "p50 and p99 latency per 100 ms, log scale");
        svg.TimeGrid(axis, top, top + plot);
        for (var v = low; v <= high * 1.0001; v *= 10)
        {
            svg.Line(Left, Y(v), Left + PlotWidth, Y(v), Colours.Grid);
            svg.Text(Left - 8, Y(v) + 4, v >= 1000 ? $"{(v / 1000).ToString("0.###", CultureInfo.InvariantCulture)} s" : $"{v.ToString("0.###", CultureInfo.InvariantCulture)} ms",
                anchor: "end", size: 11, fill: Colours.Axis);
        }
        svg.Text(Left - 60, top + plot / 2, "latency (log)", anchor: "middle", size: 12, fill: Colours.Axis, rotate: true);
        svg.RollbackSpans(timeline, axis, top, top + plot, labelled: false);
        svg.Markers(timeline, axis, top, top + plot, labelled: false);
        svg.Series(buckets.Select(b => b.P50Ms is { } v ? (axis.X(b.StartMs + b.WidthMs / 2), Y(v)) : ((double, double)?)null), Colours.P50, "p50");
        svg.Series(buckets.Select(b => b.P99Ms is { } v ? (axis.X(b.StartMs + b.WidthMs / 2), Y(v)) : ((double, double)?)null), Colours.P99, "p99");
        svg.Line(Left, top + plot, Left + PlotWidth, top + plot, Colours.Axis);
        svg.TimeAxisLabels(axis, top + plot);
        return svg.ToString();
    }

    /// <summary>A round step (1, 2 or 5 times a power of ten) near <paramref name="rough"/>.</summary>
    private static double NiceStep(double rough)
    {
        if (rough <= 0) return 1;
        var power = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var fraction = rough / power;
        return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
    }

    private static string Seconds(double ms) => (ms / 1000).ToString("0.00", CultureInfo.InvariantCulture) + " s";

    private static string N(double v) => Math.Round(v, 2).ToString(CultureInfo.InvariantCulture);

    /// <summary>One &lt;svg&gt; being written: the few shapes the charts use, text always escaped.</summary>
    private sealed class Svg
    {
        private readonly StringBuilder _body = new();

        public Svg(double height, string label)
        {
            _body.Append($"<svg viewBox=\"0 0 {N(Width)} {N(height)}\" width=\"{N(Width)}\" height=\"{N(height)}\" role=\"img\" aria-label=\"{Escape(label)}\">");
        }

        public void Rect(double x, double y, double w, double h, string fill, double rx = 0, string? title = null)
        {
            _body.Append($"<rect x=\"{N(x)}\" y=\"{N(y)}\" width=\"{N(w)}\" height=\"{N(h)}\" fill=\"{fill}\"{(rx > 0 ? $" rx=\"{N(rx)}\"" : "")}");
            _body.Append(title is null ? "/>" : $"><title>{Escape(title)}</title></rect>");
        }

        /// <summary>Markup written as given: a group's tags, built by the caller from numbers only.</summary>
        public void Raw(string markup) => _body.Append(markup);

        public void Line(double x1, double y1, double x2, double y2, string stroke, double width = 1, string? dash = null) =>
            _body.Append($"<line x1=\"{N(x1)}\" y1=\"{N(y1)}\" x2=\"{N(x2)}\" y2=\"{N(y2)}\" stroke=\"{stroke}\" stroke-width=\"{N(width)}\"{(dash is null ? "" : $" stroke-dasharray=\"{dash}\"")}/>");

        public void Text(double x, double y, string text, string anchor = "start", double size = 12, string? weight = null, string fill = Colours.Text, bool rotate = false) =>
            _body.Append($"<text x=\"{N(x)}\" y=\"{N(y)}\" text-anchor=\"{anchor}\" font-size=\"{N(size)}\" fill=\"{fill}\"{(weight is null ? "" : $" font-weight=\"{weight}\"")}" +
                         $"{(rotate ? $" transform=\"rotate(-90 {N(x)} {N(y)})\"" : "")}>{Escape(text)}</text>");

        /// <summary>A line series with gaps where a bucket had no request.</summary>
        public void Series(IEnumerable<(double X, double Y)?> points, string stroke, string name)
        {
            var run = new List<(double X, double Y)>();
            void Flush()
            {
                if (run.Count == 1) _body.Append($"<circle cx=\"{N(run[0].X)}\" cy=\"{N(run[0].Y)}\" r=\"1.5\" fill=\"{stroke}\"/>");
                else if (run.Count > 1)
                    _body.Append($"<polyline class=\"{name}\" fill=\"none\" stroke=\"{stroke}\" stroke-width=\"1.6\" stroke-linejoin=\"round\" points=\"{string.Join(' ', run.Select(p => $"{N(p.X)},{N(p.Y)}"))}\"/>");
                run.Clear();
            }
            foreach (var p in points)
            {
                if (p is { } point) run.Add(point);
                else Flush();
            }
            Flush();
        }

        public void TimeGrid(TimeAxis axis, double top, double bottom)
        {
            foreach (var t in axis.Ticks()) Line(axis.X(t), top, axis.X(t), bottom, Colours.Grid);
        }

        public void TimeAxisLabels(TimeAxis axis, double bottom)
        {
            foreach (var t in axis.Ticks())
            {
                Line(axis.X(t), bottom, axis.X(t), bottom + 4, Colours.Axis);
                Text(axis.X(t), bottom + 16, (t / 1000).ToString("0.##", CultureInfo.InvariantCulture) + " s", anchor: "middle", size: 11, fill: Colours.Axis);
            }
        }

        /// <summary>The moments that explain the buckets, as vertical lines: the switch, rollbacks, each batch ready and drained.</summary>
        /// <summary>failure_action rollback: the span from the batch failing to every instance being back, shaded (drawn before the data, behind it).</summary>
        public void RollbackSpans(DeployTimeline timeline, TimeAxis axis, double top, double bottom, bool labelled)
        {
            foreach (var back in timeline.Marks.Where(m => m.Step == BatchStep.RolledBack))
            {
                var failed = timeline.Marks.LastOrDefault(m => m.Lane == back.Lane && m.Step == BatchStep.Failed && m.AtMs <= back.AtMs) ?? back;
                var (from, to) = (axis.X(failed.AtMs), axis.X(back.AtMs));
                _body.Append($"<rect x=\"{N(from)}\" y=\"{N(top)}\" width=\"{N(Math.Max(2, to - from))}\" height=\"{N(bottom - top)}\" fill=\"{Colours.Failed}\" fill-opacity=\"0.10\"/>");
                if (labelled) Label(from, top - 5, "rollback", Colours.Failed);
            }
        }

        public void Markers(DeployTimeline timeline, TimeAxis axis, double top, double bottom, bool labelled)
        {
            foreach (var m in timeline.Marks)
            {
                var x = axis.X(m.AtMs);
                switch (m.Kind, m.Step)
                {
                    case (MarkKind.Switch, _):
                        Line(x, top, x, bottom, Colours.Switch, 1.5);
                        if (labelled) Label(x, top - 5, "switch", Colours.Switch);
                        break;
                    case (MarkKind.Rollback, _):
                        Line(x, top, x, bottom, Colours.Failed, 1.5, "5 3");
                        // A batch's rollback is labelled at its shaded span; the pipeline's rollback phase here.
                        if (labelled && m.Step is null) Label(x, top - 5, "rollback", Colours.Failed);
                        break;
                    case (MarkKind.Batch, BatchStep.Ready):
                        Line(x, top, x, bottom, Colours.Ready, 1, "3 3");
                        break;
                    case (MarkKind.Batch, BatchStep.Drained):
                        Line(x, top, x, bottom, Colours.Drained, 1, "1 3");
                        break;
                    case (MarkKind.Batch, BatchStep.Failed):
                        Line(x, top, x, bottom, Colours.Failed, 1, "3 3");
                        break;
                }
            }
        }

        /// <summary>A marker's name beside its line: right of it, or left of it near the plot's right edge.</summary>
        private void Label(double x, double y, string text, string fill)
        {
            if (x > Left + PlotWidth - 60) Text(x - 3, y, text, anchor: "end", size: 11, weight: "600", fill: fill);
            else Text(x + 3, y, text, size: 11, weight: "600", fill: fill);
        }

        public void StepSymbol(double x, double y, TimelineMark mark)
        {
            var title = $"<title>{Escape($"{mark.Label} at {Seconds(mark.AtMs)}")}</title>";
            switch (mark.Step)
            {
                case BatchStep.Started:
                    _body.Append($"<path d=\"M{N(x)},{N(y - 6)} L{N(x + 6)},{N(y)} L{N(x)},{N(y + 6)} Z\" fill=\"{Colours.Text}\">{title}</path>");
                    break;
                case BatchStep.Ready:
                    _body.Append($"<circle cx=\"{N(x)}\" cy=\"{N(y)}\" r=\"4.5\" fill=\"{Colours.Ready}\" stroke=\"#fff\" stroke-width=\"1\">{title}</circle>");
                    break;
                case BatchStep.Drained:
                    _body.Append($"<path d=\"M{N(x)},{N(y - 5)} L{N(x + 5)},{N(y)} L{N(x)},{N(y + 5)} L{N(x - 5)},{N(y)} Z\" fill=\"{Colours.Drained}\" stroke=\"#fff\" stroke-width=\"1\">{title}</path>");
                    break;
                case BatchStep.Monitored:
                    _body.Append($"<rect x=\"{N(x - 1)}\" y=\"{N(y - 6)}\" width=\"2\" height=\"12\" fill=\"{Colours.Text}\">{title}</rect>");
                    break;
                default: // failed, rolled back
                    _body.Append($"<path d=\"M{N(x - 4)},{N(y - 4)} L{N(x + 4)},{N(y + 4)} M{N(x + 4)},{N(y - 4)} L{N(x - 4)},{N(y + 4)}\" stroke=\"{Colours.Failed}\" stroke-width=\"2.5\">{title}</path>");
                    break;
            }
        }

        public override string ToString() => _body + "</svg>";

        private static string Escape(string text) => WebUtility.HtmlEncode(text);
    }
}
