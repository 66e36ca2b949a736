using System.CommandLine;
using System.Text.Json;
using Cutover.Config;
using Cutover.Fleet;
using Cutover.History;
using Cutover.Progress;
using Cutover.Releases;
using Spectre.Console;

namespace Cutover.Cli.Commands;

/// <summary>`cutover history`: every deploy, rollback and restart of the root (of every host), newest first.</summary>
public static class HistoryCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var limit = new Option<int?>("--limit", "-n") { Description = "At most this many lines (the newest)" };
        // Its own --hosts: bare, it asks for every host's line under each fleet deploy; with names, only those hosts'.
        var hosts = new Option<string?>("--hosts")
        {
            Description = "With hosts: one line per host under each fleet deploy; with names (comma-separated), only those hosts",
            Arity = ArgumentArity.ZeroOrOne,
        };
        var command = new Command("history", "Every deploy, rollback and restart: release, revision, who, when, how long, outcome and why, newest first")
            { common.Json, limit, hosts, common.AcceptNewHostKeys };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            return CommandRunner.RunAsync(env, json, async () =>
            {
                var max = parse.GetValue(limit);
                if (max is < 1) throw new UsageException($"--limit {max}: give a number of lines, 1 or more");
                var config = common.LoadConfig(parse);
                var perHost = parse.GetResult(hosts) is not null;
                if (config.Fleet is { } fleet)
                    return await FleetAsync(env, json, config, HostSelection.Parse(fleet, parse.GetValue(hosts), null, false), perHost, max,
                        parse.GetValue(common.AcceptNewHostKeys), ct);
                if (perHost) throw new UsageException($"--hosts is for configs with hosts; {config.File} deploys on this machine");
                var views = HistoryView.Newest(new HistoryLog(new RootLayout(config.Root)).Read(), max);
                if (json)
                {
                    env.Out.WriteLine(JsonSerializer.Serialize(views, Json.Options));
                    return ExitCodes.Ok;
                }
                if (views.Count == 0)
                {
                    env.Out.WriteLine($"no deploys in {config.Root} yet");
                    return ExitCodes.Ok;
                }
                var table = Table(env, withHosts: false);
                foreach (var v in views) table.AddRow(Row(v.Started, v.Action, v.Release, v.Revision, v.User, v.Seconds, v.Outcome, v.Reason));
                Write(env, table);
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    private static async Task<int> FleetAsync(CliEnvironment env, bool json, CutoverConfig config, HostSelection selection, bool perHost, int? max, bool acceptNew,
        CancellationToken ct)
    {
        var results = await new FleetCommand(config, new SilentProgress(), acceptNew, selection).QueryAsync(["history", "--json"], ct);
        var answers = new List<(string Host, IReadOnlyList<HistoryView> Entries)>();
        var problems = new List<string>();
        foreach (var r in results)
        {
            // A host no deploy of this root reached has no history: nothing to show, nothing wrong.
            if (r.NeverDeployed) continue;
            if (!r.Ok)
            {
                problems.Add($"{r.Host.Name}: {r.Error}");
                continue;
            }
            if (Json.TryRead<List<HistoryView>>(r.Stdout, out var problem) is { } entries) answers.Add((r.Host.Name, entries));
            else problems.Add($"{r.Host.Name}: `cutover history --json` answered something Cutover cannot read ({problem}): {Json.Quote(r.Stdout.Trim())}");
        }
        var lines = FleetHistoryView.Group(answers, max);
        if (json) env.Out.WriteLine(JsonSerializer.Serialize(lines, Json.Options));
        else if (lines.Count == 0 && problems.Count == 0) env.Out.WriteLine($"no deploys of {config.App} on {results.Count} hosts yet");
        else if (lines.Count > 0)
        {
            var table = Table(env, withHosts: true);
            foreach (var line in lines)
            {
                var ok = line.Hosts.Count(h => h.Entry.Outcome == "success");
                table.AddRow([$"{ok}/{line.Hosts.Count}", .. Row(line.Started, line.Action, line.Release, line.Revision, line.User, line.Seconds, line.Outcome, line.Reason)]);
                if (!perHost) continue;
                foreach (var (host, e) in line.Hosts)
                    table.AddRow([$"  {Markup.Escape(host)}", .. Row(e.Started, e.Action, e.Release, e.Revision, e.User, e.Seconds, e.Outcome, e.Reason)]);
            }
            Write(env, table);
        }
        // What the hosts that answered said is shown; the ones that did not are named, and the command fails.
        foreach (var problem in problems) env.Error.WriteLine($"error: {problem}");
        return problems.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed;
    }

    private static Table Table(CliEnvironment env, bool withHosts)
    {
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None);
        if (withHosts) table.AddColumn("hosts ok");
        return table.AddColumns("started (UTC)", "action", "release", "revision", "user", "took", "outcome", "reason");
    }

    private static string[] Row(DateTimeOffset started, string action, string? release, string? revision, string user, double seconds, string outcome, string? reason) =>
    [
        started.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss"), Markup.Escape(action), Markup.Escape(release ?? "-"), Markup.Escape(ReleasesCommand.ShortRevision(revision)),
        Markup.Escape(user), $"{seconds:0.0}s", OutcomeMarkup(outcome), Markup.Escape(reason ?? ""),
    ];

    private static string OutcomeMarkup(string outcome) => outcome switch
    {
        "success" => "[green]success[/]",
        "paused" or "rolled_back" or "hook_failed" or "mixed" => $"[yellow]{outcome}[/]",
        _ => $"[red]{Markup.Escape(outcome)}[/]",
    };

    /// <summary>In a pipe the table is as wide as it needs: a reason is never wrapped into pieces.</summary>
    private static void Write(CliEnvironment env, Table table)
    {
        if (!env.Interactive) env.Console.Profile.Width = 400;
        env.Console.Write(table);
    }
}
