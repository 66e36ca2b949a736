using System.Globalization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Cutover.Cli.Output.Top;

/// <summary>One app row of top: the frame (host) it came from, and its key for the selection.</summary>
public sealed record TopRow(TopFrame Frame, AppTop App)
{
    public string Key => $"{Frame.Host}/{App.App}";
}

/// <summary>
/// How `cutover top` looks: the live screen (header, key help, an app table with the selected row highlighted, the
/// selected app's instances, or its logs) and the plain snapshot for a pipe (every app, then every instance, no ANSI).
/// With hosts every table has a host column; each host's frame is its own agent's.
/// </summary>
public static class TopRenderer
{
    public static IReadOnlyList<TopRow> Rows(IReadOnlyList<TopFrame> frames) =>
        frames.SelectMany(f => f.Apps.Select(a => new TopRow(f, a))).ToList();

    public static IRenderable Live(IReadOnlyList<TopFrame> frames, TopScreen screen, bool fleet, TopLogView? logs, int height)
    {
        var rows = Rows(frames);
        var selected = TopKeys.Selected(screen, rows.Select(r => r.Key).ToList());
        var parts = new List<IRenderable> { new Markup(Header(frames, fleet)) };
        if (screen.Logs && logs is not null)
        {
            parts.Add(new Markup($"[grey]{Markup.Escape(TopKeys.LogsHelp)}[/]"));
            // Header, help and the panel's two borders; the rest of the screen is log lines, the newest at the bottom.
            var room = Math.Max(1, height - 5);
            var lines = logs.Lines(room);
            var text = lines.Count == 0 ? "[grey](no lines yet)[/]" : string.Join("\n", lines.Select(Markup.Escape));
            parts.Add(new Panel(new Markup(text)).Header(Markup.Escape($" logs of {logs.Title} ")).Expand());
            return new Rows(parts);
        }
        parts.Add(new Markup($"[grey]{Markup.Escape(TopKeys.Help)}[/]"));
        parts.Add(AppTable(rows, fleet, selected, TableBorder.Rounded));
        var chosen = rows.FirstOrDefault(r => r.Key == selected);
        if (chosen is not null)
        {
            parts.Add(new Markup(Markup.Escape($"instances of {chosen.App.App}{(fleet ? $" on {chosen.Frame.Host}" : "")}")));
            parts.Add(InstanceTable([chosen], fleet, TableBorder.Rounded));
        }
        foreach (var line in Problems(frames)) parts.Add(new Markup($"[red]{Markup.Escape(line)}[/]"));
        return new Rows(parts);
    }

    /// <summary>The snapshot for a pipe: a header line, every app, every instance; plain text (the console has no ANSI).</summary>
    public static void Plain(IAnsiConsole console, TextWriter output, IReadOnlyList<TopFrame> frames, bool fleet)
    {
        var rows = Rows(frames);
        output.WriteLine(Markup.Remove(Header(frames, fleet)));
        output.Flush();
        console.Write(AppTable(rows, fleet, null, TableBorder.None));
        if (rows.Any(r => r.App.Instances.Count > 0)) console.Write(InstanceTable(rows, fleet, TableBorder.None));
        foreach (var line in Problems(frames)) output.WriteLine(line);
    }

    private static string Header(IReadOnlyList<TopFrame> frames, bool fleet)
    {
        var at = frames.Count == 0 ? DateTimeOffset.UtcNow : frames.Max(f => f.At);
        var window = frames.SelectMany(f => f.Apps).Select(a => a.WindowSeconds).DefaultIfEmpty(0).Max();
        var who = fleet
            ? $"{frames.Count} hosts"
            : frames is [{ Agent: { } agent }] ? $"agent {agent.Version ?? "?"} (pid {agent.Pid})" : "agent";
        var rates = window > 0 ? $"rates over the last {window:0} s" : "rates from the next refresh on";
        return $"[bold]cutover top[/]  {Markup.Escape(who)}  {at.UtcDateTime:HH:mm:ss}Z  [grey]{Markup.Escape(rates)}[/]";
    }

    private static IEnumerable<string> Problems(IReadOnlyList<TopFrame> frames) =>
        frames.Where(f => f.Error is not null).Select(f => (f.Host is null ? "" : f.Host + ": ") + f.Error);

    private static Table AppTable(IReadOnlyList<TopRow> rows, bool fleet, string? selected, TableBorder border)
    {
        var table = new Table().Border(border).BorderColor(Color.Grey);
        if (fleet) table.AddColumn("host");
        table.AddColumns("app", "release", "proxy", "instances").AddColumn(new TableColumn("req/s").RightAligned())
            .AddColumn(new TableColumn("errors").RightAligned()).AddColumn(new TableColumn("p99").RightAligned()).AddColumn("deploy");
        foreach (var row in rows)
        {
            var app = row.App;
            var ready = app.Instances.Count(i => i.State == "ready");
            var cells = new List<string>();
            if (fleet) cells.Add(Markup.Escape(row.Frame.Host ?? ""));
            cells.AddRange([
                $"[bold]{Markup.Escape(app.App)}[/]",
                Markup.Escape(app.Release ?? "-"),
                Markup.Escape(app.Proxy),
                $"{ready}/{app.Instances.Count} ready",
                app.RequestsPerSecond is { } rps ? rps.ToString("0.0", CultureInfo.InvariantCulture) : "-",
                app.ErrorRate is { } errors ? errors > 0 ? $"[red]{Percent(errors)}[/]" : Percent(errors) : "-",
                app.P99Seconds is { } p99 ? Latency(p99) : "-",
                app.Deploying is not null ? $"[cyan]{Markup.Escape(Deploy(app))}[/]" : Markup.Escape(Deploy(app)),
            ]);
            if (row.Key == selected) cells = cells.Select(c => $"[invert]{c}[/]").ToList();
            table.AddRow(cells.ToArray());
        }
        if (rows.Count == 0) table.AddRow(Enumerable.Repeat("", fleet ? 8 : 7).Prepend("(no apps)").ToArray());
        return table;
    }

    private static Table InstanceTable(IReadOnlyList<TopRow> rows, bool fleet, TableBorder border)
    {
        var table = new Table().Border(border).BorderColor(Color.Grey);
        if (fleet) table.AddColumn("host");
        table.AddColumns("instance", "process", "state", "release").AddColumn(new TableColumn("uptime").RightAligned())
            .AddColumn(new TableColumn("cpu").RightAligned()).AddColumn(new TableColumn("memory").RightAligned()).AddColumn(new TableColumn("restarts").RightAligned());
        foreach (var row in rows)
        foreach (var i in row.App.Instances.OrderBy(i => i.Process == Config.ProcessConfigReader.Web ? "" : i.Process, StringComparer.Ordinal))
        {
            var cells = new List<string>();
            if (fleet) cells.Add(Markup.Escape(row.Frame.Host ?? ""));
            var state = i.State + (i.Problem is not null && i.State != "ready" ? $" ({i.Problem})" : "");
            cells.AddRange([
                Markup.Escape(i.Id),
                Markup.Escape(i.Process),
                i.State == "ready" ? Markup.Escape(state) : $"[yellow]{Markup.Escape(state)}[/]",
                // During a deploy the instances already on the new release stand out.
                row.App.Deploying?.Release is { } moving && moving == i.Release ? $"[green]{Markup.Escape(i.Release)}[/]" : Markup.Escape(i.Release ?? "-"),
                i.UptimeSeconds is { } up ? Uptime(TimeSpan.FromSeconds(up)) : "-",
                i.CpuPercent is { } cpu ? cpu.ToString("0.0", CultureInfo.InvariantCulture) + "%" : "-",
                (i.MemoryBytes / (1024.0 * 1024)).ToString("0.0", CultureInfo.InvariantCulture) + " MiB",
                i.Restarts.ToString(CultureInfo.InvariantCulture),
            ]);
            table.AddRow(cells.ToArray());
        }
        return table;
    }

    /// <summary>"deploying r2: batch 2/3" (a rolling batch), "deploying r2: green", "restart r2", "maintenance", "paused", or "-".</summary>
    public static string Deploy(AppTop app)
    {
        var parts = new List<string>();
        if (app.Deploying is { } d)
            parts.Add($"{(d.Kind == "deploy" ? "deploying" : d.Kind)} {d.Release}{(d.Batch is not null ? ": batch " + d.Batch : d.Phase is not null ? ": " + d.Phase : "")}");
        if (app.Maintenance) parts.Add("maintenance");
        if (app.Paused) parts.Add("paused");
        return parts.Count == 0 ? "-" : string.Join(", ", parts);
    }

    public static string Percent(double share) => (share * 100).ToString(share is > 0 and < 0.001 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + "%";

    public static string Latency(double seconds) => seconds < 1
        ? (seconds * 1000).ToString(seconds < 0.01 ? "0.0" : "0", CultureInfo.InvariantCulture) + " ms"
        : seconds.ToString("0.00", CultureInfo.InvariantCulture) + " s";

    public static string Uptime(TimeSpan up) =>
        up.TotalDays >= 1 ? $"{(int)up.TotalDays}d {up.Hours}h"
        : up.TotalHours >= 1 ? $"{(int)up.TotalHours}h {up.Minutes}m"
        : up.TotalMinutes >= 1 ? $"{up.Minutes}m {up.Seconds}s"
        : $"{(int)up.TotalSeconds}s";
}
