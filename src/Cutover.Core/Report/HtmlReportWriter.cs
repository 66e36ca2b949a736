using System.Globalization;
using System.Net;
using System.Text;
using Cutover.Platform;
using Cutover.Progress;

namespace Cutover.Report;

/// <summary>
/// The report as one HTML file that needs nothing else (styles inline, charts as inline SVG, no script), written
/// atomically: a summary on top, the phase lanes, requests per second and latency on one time axis, and every
/// marker in time order. Light background and the system font stack, so a screenshot reads well in a pull request.
/// </summary>
public static class HtmlReportWriter
{
    /// <summary>
    /// Refuses, before anything is deployed, a report path the report could not be written to: its directory must
    /// exist and take a new file (the report is written beside it, then renamed), and the path must not be a directory.
    /// </summary>
    public static void CheckWritable(string path)
    {
        if (string.IsNullOrWhiteSpace(path)) throw new InputException("--report: give the .html file to write");
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new InputException($"--report: {path} is a directory; name the .html file to write");
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new InputException($"--report: the directory {dir} does not exist");
        var probe = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.check");
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InputException($"--report: cannot write in {dir}: {e.Message}");
        }
    }

    public static void Write(string path, DeployReport report) => AtomicFile.WriteAllText(Path.GetFullPath(path), Render(report));

    public static string Render(DeployReport report)
    {
        var axis = SvgChartWriter.TimeAxis.For(report);
        var html = new StringBuilder();
        html.Append($"""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="generator" content="cutover {E(CutoverVersion.Current)}">
            <title>{E(report.Title)}</title>
            <style>{Style}</style>
            </head>
            <body>
            <main>
            <header><h1>{E(report.Title)}</h1><p class="sub">{E(report.Subtitle)}</p></header>

            """);
        html.Append("<table class=\"facts\"><tr>");
        foreach (var fact in report.Facts) html.Append($"<th>{E(fact.Label)}</th>");
        html.Append("</tr><tr>");
        foreach (var fact in report.Facts)
            html.Append($"<td data-fact=\"{E(fact.Label.ToLowerInvariant())}\"{(fact.Tone == FactTone.Plain ? "" : $" class=\"{fact.Tone.ToString().ToLowerInvariant()}\"")}>{E(fact.Value)}</td>");
        html.Append("</tr></table>\n");
        if (report.Error is { } error) html.Append($"<p class=\"error\">{E(error)}</p>\n");
        if (report.PhaseTimes.Count > 0)
            html.Append("<p class=\"phases\"><span>Phases</span> ")
                .AppendJoin(" · ", report.PhaseTimes.Select(p => $"{E(p.Label)} <b>{E(p.Value)}</b>"))
                .Append("</p>\n");

        if (report.Timeline.Phases.Count > 0)
        {
            html.Append("<section><h2>Timeline</h2>");
            // The legend names what this timeline shows: no batch items for blue-green or symlink, no red when nothing failed.
            var steps = report.Timeline.Marks.Select(m => m.Step).OfType<BatchStep>().ToHashSet();
            (string, string, string)[] legend =
            [
                ("phase", SvgChartWriter.Colours.Phase, "bar"),
                .. steps.Count > 0 ? [("batch", SvgChartWriter.Colours.Batch, "bar")] : Array.Empty<(string, string, string)>(),
                .. steps.Contains(BatchStep.Monitored) ? [("monitor window", SvgChartWriter.Colours.Monitor, "bar")] : Array.Empty<(string, string, string)>(),
                .. report.Timeline.Phases.Any(p => p.Failed) ? [("failed", SvgChartWriter.Colours.Failed, "bar")] : Array.Empty<(string, string, string)>(),
                .. steps.Count > 0 ? [("▶ started", SvgChartWriter.Colours.Text, "text"), ("● ready", SvgChartWriter.Colours.Ready, "text"), ("◆ drained", SvgChartWriter.Colours.Drained, "text")]
                    : Array.Empty<(string, string, string)>(),
                .. steps.Contains(BatchStep.Failed) || steps.Contains(BatchStep.RolledBack) ? [("✕ failed / rolled back", SvgChartWriter.Colours.Failed, "text")] : Array.Empty<(string, string, string)>(),
            ];
            html.Append(Legend(legend));
            html.Append(SvgChartWriter.Lanes(report.Timeline, axis)).Append("</section>\n");
        }
        html.Append("<section><h2>Requests per second <small>by the time each was sent, 100 ms buckets</small></h2>");
        // Only the markers this deploy has: a probe alone has none, a blue-green deploy no batches.
        var marks = report.Timeline.Marks;
        html.Append(Legend([("answered", SvgChartWriter.Colours.Answered, "bar"), ("failed", SvgChartWriter.Colours.Failed, "bar"),
            .. marks.Any(m => m.Kind == MarkKind.Switch) ? [("switch", SvgChartWriter.Colours.Switch, "line")] : Array.Empty<(string, string, string)>(),
            .. marks.Any(m => m.Kind == MarkKind.Rollback || m.Step == BatchStep.Failed) ? [("batch failed, rollback", SvgChartWriter.Colours.Failed, "dash")] : Array.Empty<(string, string, string)>(),
            .. marks.Any(m => m.Step == BatchStep.Ready) ? [("batch ready", SvgChartWriter.Colours.Ready, "dash")] : Array.Empty<(string, string, string)>(),
            .. marks.Any(m => m.Step == BatchStep.Drained) ? [("batch drained", SvgChartWriter.Colours.Drained, "dot")] : Array.Empty<(string, string, string)>()]));
        html.Append(SvgChartWriter.Requests(report.Probe.Buckets, report.Timeline, axis)).Append("</section>\n");
        html.Append("<section><h2>Latency <small>from each request's scheduled time, 100 ms buckets</small></h2>");
        html.Append(Legend(("p50", SvgChartWriter.Colours.P50, "line"), ("p99", SvgChartWriter.Colours.P99, "line")));
        html.Append(SvgChartWriter.Latency(report.Probe.Buckets, report.Timeline, axis)).Append("</section>\n");

        if (report.Timeline.Marks.Count > 0)
        {
            html.Append("<section><h2>Events</h2><table class=\"events\"><tr><th>time</th><th>event</th></tr>");
            foreach (var mark in report.Timeline.Marks)
                html.Append($"<tr data-marker=\"{E(mark.Label)}\" data-ms=\"{mark.AtMs.ToString("0.0", CultureInfo.InvariantCulture)}\"{(mark.Kind == MarkKind.Rollback || mark.Step == BatchStep.Failed ? " class=\"bad\"" : "")}>" +
                            $"<td>{(mark.AtMs / 1000).ToString("0.000", CultureInfo.InvariantCulture)} s</td><td>{E(mark.Label)}</td></tr>");
            html.Append("</table></section>\n");
        }
        html.Append("""
            <footer>Written by cutover. Buckets hold the requests the probe sent in each 100 ms; phase and batch times are when the CLI received them.</footer>
            </main>
            </body>
            </html>

            """);
        return html.ToString();
    }

    private static string Legend(params (string Name, string Colour, string Shape)[] items)
    {
        var html = new StringBuilder("<p class=\"legend\">");
        foreach (var (name, colour, shape) in items)
            html.Append(shape == "text"
                ? $"<span style=\"color:{colour}\">{E(name)}</span>"
                : $"<span><i class=\"{shape}\" style=\"--c:{colour}\"></i>{E(name)}</span>");
        return html.Append("</p>").ToString();
    }

    private static string E(string text) => WebUtility.HtmlEncode(text);

    private const string Style = """
        :root { color-scheme: light; }
        body { margin: 0; background: #ffffff; color: #1f2328;
               font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "Liberation Sans", Arial, sans-serif;
               font-size: 14px; line-height: 1.4; }
        main { max-width: 1100px; margin: 0 auto; padding: 20px 24px 32px; }
        h1 { font-size: 22px; font-weight: 600; margin: 0; }
        h2 { font-size: 15px; font-weight: 600; margin: 14px 0 2px; }
        h2 small { font-weight: 400; color: #6b7280; font-size: 12px; margin-left: 6px; }
        .sub { color: #57606a; margin: 2px 0 12px; }
        table.facts { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
        table.facts th { text-align: left; font-size: 11px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; color: #6b7280; padding: 6px 10px 2px; background: #f6f8fa; }
        table.facts td { font-size: 17px; font-weight: 600; padding: 2px 10px 8px; background: #f6f8fa; white-space: nowrap; }
        table.facts td.good { color: #1a7f37; }
        table.facts td.bad { color: #d62728; }
        .error { color: #d62728; background: #fff5f5; border-left: 3px solid #d62728; padding: 6px 10px; margin: 10px 0 0; }
        .phases { color: #57606a; margin: 8px 0 0; font-size: 12.5px; font-variant-numeric: tabular-nums; }
        .phases span { font-weight: 600; color: #1f2328; margin-right: 4px; }
        .phases b { font-weight: 600; color: #1f2328; }
        .legend { margin: 0 0 2px; font-size: 12px; color: #57606a; }
        .legend span { margin-right: 16px; white-space: nowrap; }
        .legend i { display: inline-block; vertical-align: -1px; margin-right: 5px; }
        .legend i.bar { width: 12px; height: 10px; background: var(--c); border-radius: 2px; }
        .legend i.line { width: 16px; height: 0; border-top: 2px solid var(--c); vertical-align: 3px; }
        .legend i.dash { width: 16px; height: 0; border-top: 2px dashed var(--c); vertical-align: 3px; }
        .legend i.dot { width: 16px; height: 0; border-top: 2px dotted var(--c); vertical-align: 3px; }
        svg { display: block; max-width: 100%; height: auto; font-family: inherit; font-variant-numeric: tabular-nums; }
        table.events { border-collapse: collapse; font-size: 12.5px; font-variant-numeric: tabular-nums; }
        table.events th, table.events td { text-align: left; padding: 2px 14px 2px 0; border-bottom: 1px solid #eaeef2; }
        table.events tr.bad td { color: #d62728; }
        footer { margin-top: 20px; color: #8c959f; font-size: 11.5px; }
        """;
}
