using System.CommandLine;
using System.Text.Json;
using Cutover.Agent;
using Cutover.Cli.Output;
using Cutover.Config;
using Cutover.Platform;
using Cutover.Releases;
using Spectre.Console;

namespace Cutover.Cli.Commands;

public static class StatusCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var command = new Command("status", "What is live, what a rollback would switch to, and the last action") { common.Json, common.AcceptNewHostKeys, common.Hosts, common.Roles };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            return CommandRunner.RunAsync(env, json, async () =>
            {
                var config = common.LoadConfig(parse);
                // SSH.NET (hosts:) and Docker.DotNet (swarm) are the JIT build's (NativeBuild).
                if (!JitOnly.IsAvailable && (config.Fleet is not null || config.Strategy == Strategy.Swarm)) return NativeBuild.HandOver();
                if (common.Selection(parse, config) is { } selection)
                    return JitOnly.IsAvailable ? await FleetCommands.StatusAsync(env, json, config, parse.GetValue(common.AcceptNewHostKeys), selection, ct) : NativeBuild.HandOver();
                var s = RootSnapshot.Read(new RootLayout(config.Root));
                // As few questions to the agent as status needs (issue 14: start-up): each "is it running" is a whole
                // `v1/apps` answer, so that answer is the one status uses.
                AppView? agentView = null;
                IReadOnlyList<string> agentWarnings = [];
                AgentInfo? agentProcess = null;
                if (config.RunsInstances)
                {
                    // Two requests: the apps (which say whether it runs), and GET /v1/agent with the warnings beside pid and version.
                    using var agent = new AgentClient(AgentHome.FromEnvironment());
                    if (await agent.AppsIfRunningAsync(ct) is { } apps)
                    {
                        agentView = apps.FirstOrDefault(a => a.App == config.App);
                        agentProcess = await agent.InfoAsync(ct);
                        agentWarnings = agentProcess.Warnings;
                    }
                }
                var swarmView = JitOnly.IsAvailable && config.Settings is SwarmSettings { Swarm: var swarm } ? await Cutover.Swarm.SwarmStatus.ReadAsync(swarm, ct) : null;
                var current = s.CurrentRecord;
                // A paused rolling deploy: instances of a newer release serve beside `current`'s until deploy or rollback.
                var paused = current is null ? null : ReleasePlanner.PausedAfter(s.Releases, current.ReleaseId);
                if (json)
                {
                    env.Out.WriteLine(Json.Write(new StatusReport(
                        config.App,
                        config.Strategy.Name,
                        config.Root,
                        current is null ? null : new CurrentReleaseView(current.Id, current.Revision, ReleasesCommand.StatusName(current.Status), current.Updated ?? current.Created, current.Failure),
                        paused is null ? s.RollbackTarget?.Id : current!.Id,
                        paused is null ? null : new PausedReleaseView(paused.Id, paused.Failure),
                        s.Releases.Count,
                        s.Releases.Count(r => r.Status == ReleaseStatus.Failed),
                        s.LastAction,
                        s.LockHolder,
                        agentView,
                        agentWarnings,
                        swarmView is null ? null : SwarmJson(swarmView),
                        agentProcess), CliJson.Indented));
                    return ExitCodes.Ok;
                }
                var grid = new Grid().AddColumn(new GridColumn().NoWrap().PadRight(2)).AddColumn();
                void Row(string key, string value) => grid.AddRow($"[bold]{key}[/]", value);
                Row("app", Markup.Escape($"{config.App} ({config.Strategy})"));
                Row("root", Markup.Escape(config.Root));
                Row("current", current is null
                    ? "[yellow]nothing deployed yet[/]"
                    : current.Status == ReleaseStatus.Unreadable
                    ? $"[red]{Markup.Escape($"{current.Id}  {current.Failure}")}[/]"
                    : Markup.Escape($"{current.Id}  revision {ReleasesCommand.ShortRevision(current.Revision)}  {ReleasesCommand.StatusName(current.Status)} since {(current.Updated ?? current.Created):yyyy-MM-dd HH:mm:ss}Z"));
                if (paused is not null) Row("paused", $"[yellow]{Markup.Escape($"{paused.Id}: {paused.Failure}")}[/]");
                Row("rollback to", Markup.Escape(paused is not null ? $"{current!.Id} (every instance)" : s.RollbackTarget?.Id ?? "-"));
                Row("releases", $"{s.Releases.Count} kept (keep_releases: {config.KeepReleases})");
                if (s.LastAction is { } last)
                    Row("last action", Markup.Escape($"{last.Action} {last.Release} by {last.User} at {last.Finished:yyyy-MM-dd HH:mm:ss}Z: {last.Outcome}{(last.Error is null ? "" : $" ({last.Error})")}"));
                Row("lock", s.LockHolder is null ? "free" : Markup.Escape($"held by {s.LockHolder}"));
                if (config.RunsInstances) Row("agent", agentProcess is null ? "not running" : Markup.Escape(AgentCommands.AgentLine(agentProcess)[6..]));
                env.Console.Write(grid);
                if (config.RunsInstances) AgentCommands.RenderInstances(env, agentView);
                // On stderr as well as loud: a restored or lost state is something to act on, not a detail.
                foreach (var warning in agentWarnings) env.Error.WriteLine($"warning: the agent: {warning}");
                if (swarmView is not null) RenderSwarm(env, swarmView);
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    private static SwarmView SwarmJson(Cutover.Swarm.SwarmStatus s) => new(
        s.Service, s.Exists, s.Image, s.Release, new ReplicaCount(s.Running, s.Desired), s.UpdateState, s.UpdateMessage, s.Error,
        s.Tasks.Select(t => new SwarmTaskView(t.Id, t.Slot, t.State, t.DesiredState, t.Image, t.Release, t.StateSince, t.Error, t.ExitCode)).ToList());

    private static void RenderSwarm(CliEnvironment env, Cutover.Swarm.SwarmStatus s)
    {
        if (s.Error is not null)
        {
            env.Console.MarkupLine($"[red]{Markup.Escape(s.Error)}[/]");
            return;
        }
        if (!s.Exists)
        {
            env.Console.MarkupLine(Markup.Escape($"service {s.Service} does not exist yet; `cutover deploy --image IMAGE` creates it"));
            return;
        }
        var grid = new Grid().AddColumn(new GridColumn().NoWrap().PadRight(2)).AddColumn();
        grid.AddRow("[bold]service[/]", Markup.Escape($"{s.Service}  {s.Image}  release {s.Release ?? "-"}"));
        grid.AddRow("[bold]replicas[/]", Markup.Escape($"{s.Running}/{s.Desired} running"));
        grid.AddRow("[bold]update[/]", Markup.Escape(s.UpdateState is null ? "-" : $"{s.UpdateState}{(s.UpdateMessage is { Length: > 0 } m ? $": {m}" : "")}"));
        env.Console.Write(grid);
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None)
            .AddColumns("task", "state", "desired", "image", "release", "since (UTC)", "error");
        foreach (var t in s.Tasks)
            table.AddRow(Markup.Escape($"{t.Slot}/{s.Desired}"), Markup.Escape(t.State), Markup.Escape(t.DesiredState), Markup.Escape(t.Image),
                Markup.Escape(t.Release ?? "-"), t.StateSince.ToString("yyyy-MM-dd HH:mm:ss"), Markup.Escape(t.Failed ? t.Reason : ""));
        env.Console.Write(table);
    }
}
