using System.CommandLine;
using System.Text.Json;
using Cutover.Config;
using Cutover.Releases;
using Spectre.Console;

namespace Cutover.Cli.Commands;

public static class ReleasesCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var command = new Command("releases", "List releases: id, revision, created, status, and which one is current") { common.Json, common.AcceptNewHostKeys, common.Hosts, common.Roles };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            return CommandRunner.RunAsync(env, json, () =>
            {
                var config = common.LoadConfig(parse);
                // SSH.NET (hosts:) is the JIT build's (NativeBuild).
                if (!Cutover.Platform.JitOnly.IsAvailable && config.Fleet is not null) return Task.FromResult(NativeBuild.HandOver());
                if (common.Selection(parse, config) is { } selection)
                    return Cutover.Platform.JitOnly.IsAvailable ? FleetCommands.ReleasesAsync(env, json, config, parse.GetValue(common.AcceptNewHostKeys), selection, ct) : Task.FromResult(NativeBuild.HandOver());
                var snapshot = RootSnapshot.Read(new RootLayout(config.Root));
                if (json)
                {
                    env.Out.WriteLine(Json.Write(snapshot.Releases.Reverse().Select(r => new Output.ReleaseView(
                        r.Id, r.Revision, r.Image, r.Created, StatusName(r.Status), r.ReleaseId == snapshot.Current, r.ReleaseId == snapshot.RollbackTarget?.ReleaseId,
                        r.Failure)).ToList(), Output.CliJson.Indented));
                    return Task.FromResult(ExitCodes.Ok);
                }
                if (snapshot.Releases.Count == 0)
                {
                    env.Out.WriteLine($"no releases in {config.Root} yet; `cutover deploy {(config.Settings.DeploysImage ? "--image IMAGE" : "DIR")}` makes the first");
                    return Task.FromResult(ExitCodes.Ok);
                }
                var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None)
                    .AddColumns("", "id", config.Settings.DeploysImage ? "image" : "revision", "created (UTC)", "status", "note");
                foreach (var r in snapshot.Releases.Reverse())
                {
                    var isCurrent = r.ReleaseId == snapshot.Current;
                    var marker = isCurrent ? "[green]●[/]" : r.ReleaseId == snapshot.RollbackTarget?.ReleaseId ? "[grey]○[/]" : "";
                    var note = isCurrent ? "current" : r.ReleaseId == snapshot.RollbackTarget?.ReleaseId ? "rollback target" : r.Failure ?? "";
                    if (isCurrent && r.Status == ReleaseStatus.Unreadable) note = $"current; {r.Failure}";
                    table.AddRow(marker, Markup.Escape(r.Id), Markup.Escape(config.Settings.DeploysImage ? r.Image ?? r.Revision ?? "-" : ShortRevision(r.Revision)), r.Created.ToString("yyyy-MM-dd HH:mm:ss"),
                        StatusMarkup(r.Status), Markup.Escape(note));
                }
                env.Console.Write(table);
                return Task.FromResult(ExitCodes.Ok);
            });
        });
        return command;
    }

    internal static string StatusName(ReleaseStatus status) => JsonNamingPolicyName(status);

    internal static string ShortRevision(string? revision) => revision is null ? "-" : revision.Length > 12 ? revision[..12] : revision;

    private static string JsonNamingPolicyName(ReleaseStatus status) =>
        System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(status.ToString());

    private static string StatusMarkup(ReleaseStatus status) => status switch
    {
        ReleaseStatus.Active => "[green]active[/]",
        ReleaseStatus.Failed => "[red]failed[/]",
        ReleaseStatus.Cancelled => "[red]cancelled[/]",
        ReleaseStatus.Paused => "[yellow]paused[/]",
        ReleaseStatus.RolledBack => "[yellow]rolled_back[/]",
        ReleaseStatus.Switched => "[yellow]switched[/]",
        ReleaseStatus.Unreadable => "[red]unreadable[/]",
        _ => "[grey]staging[/]",
    };
}
