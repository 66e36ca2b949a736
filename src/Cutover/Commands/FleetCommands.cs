using System.Text.Json;
using Cutover.Cli.Output;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Fleet;
using Cutover.Progress;
using Spectre.Console;

namespace Cutover.Cli.Commands;

/// <summary>deploy, status, releases and rollback when the config lists hosts: the same commands, on every host.</summary>
public static class FleetCommands
{
    private static SelfContainedBuild Build() => SelfContainedBuild.Locate(Environment.GetEnvironmentVariable);

    /// <summary>A table with a row per host; in a pipe it is as wide as it needs, so no host name is ever wrapped.</summary>
    private static void Write(CliEnvironment env, Table table)
    {
        if (!env.Interactive) env.Console.Profile.Width = 400;
        env.Console.Write(table);
    }

    public static async Task<int> DeployAsync(CliEnvironment env, bool json, IDeployProgress progress, CutoverConfig config, FleetDeployRequest request,
        HostSelection selection, CancellationToken ct)
    {
        var result = await new FleetDeployer(config, progress, Build(), Environment.GetEnvironmentVariable, selection).DeployAsync(request, ct);
        if (result.Succeeded && selection.Narrowed)
            await WarnMixedAsync(progress, config, selection, result.Release!, result.Hosts.Select(h => (h.Host, h.Release ?? "?")).ToList(), request.AcceptNewHostKeys, ct);
        // Once for the fleet, from here: the hosts' sessions never notify.
        await Cutover.Notify.WebhookNotifier.NotifyAsync(config.Notify, Cutover.Notify.NotifyPayload.ForDeploy(config.App, result.Outcome, result.Release, request.Revision,
            Environment.UserName, result.Error, result.Seconds, $"to {result.Hosts.Count} hosts"), progress.Warning);
        if (json)
        {
            ((JsonProgress)progress).Result(new FleetDeployResultEvent("deploy", config.App, result.Outcome.Word(), result.Release, result.Error, result.Hosts,
                Math.Round(result.Seconds, 3)));
            return result.Succeeded ? ExitCodes.Ok : result.Locked ? ExitCodes.Locked : result.BadInput ? ExitCodes.BadInput : ExitCodes.Failed;
        }
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None).AddColumns("host", "outcome", "error");
        foreach (var h in result.Hosts) table.AddRow(Markup.Escape(h.Host), Markup.Escape(h.Outcome), Markup.Escape(h.Error ?? ""));
        Write(env, table);
        if (result.Succeeded)
        {
            var message = $"deployed {config.App} release {result.Release} to {result.Hosts.Count} hosts in {result.Seconds:0.00}s";
            if (env.Interactive) env.Console.MarkupLine($"[green bold]{Markup.Escape(message)}[/]");
            else env.Out.WriteLine(message);
            return ExitCodes.Ok;
        }
        env.Error.WriteLine($"error: {result.Error}");
        return result.Locked ? ExitCodes.Locked : result.BadInput ? ExitCodes.BadInput : ExitCodes.Failed;
    }

    /// <summary>
    /// After a deploy to some hosts only: one warning that names which hosts run which release, so nobody takes the
    /// fleet for uniform (the hosts left out are asked; one that cannot answer is named as such).
    /// </summary>
    private static async Task WarnMixedAsync(IDeployProgress progress, CutoverConfig config, HostSelection selection, string release,
        IReadOnlyList<(string Host, string Release)> moved, bool acceptNew, CancellationToken ct)
    {
        var others = selection.Others(config.Fleet!);
        if (others.Count == 0) return;
        var answers = await QueryAsync<StatusReport>(config, acceptNew, "status", ct, new HostSelection(others, true));
        var groups = moved
            .Concat(answers.Select(a => (a.Host.Name, Release: a.NeverDeployed ? "nothing" : a.Answer?.Current?.Id ?? (a.Answer is null ? "unknown (did not answer)" : "nothing"))))
            .GroupBy(h => h.Release)
            .ToList();
        // Every host on the same release after all (the others were there already): nothing is mixed.
        if (groups.Count == 1) return;
        var described = groups.Select(g => $"{string.Join(", ", g.Select(h => h.Item1))} {(g.Key == release ? "" : "still ")}{(g.Count() == 1 ? "runs" : "run")} {g.Key}");
        progress.Warning($"the fleet is now mixed (--hosts/--roles left out {string.Join(", ", others.Select(o => o.Name))}): {string.Join("; ", described)}");
    }

    public static async Task<int> StatusAsync(CliEnvironment env, bool json, CutoverConfig config, bool acceptNew, HostSelection selection, CancellationToken ct)
    {
        var answers = await QueryAsync<StatusReport>(config, acceptNew, "status", ct, selection);
        if (json)
        {
            env.Out.WriteLine(JsonSerializer.Serialize(answers.Select(a => new HostStatus(a.Host.Name, a.Host.Roles, !a.NeverDeployed, a.Answer, a.Error)).ToList(), Json.Options));
            return QueryExit(answers);
        }
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None)
            .AddColumns("host", "roles", "current", "revision", "rollback to", "releases", "lock", "last action");
        foreach (var a in answers)
        {
            if (a.NeverDeployed)
            {
                table.AddRow(Markup.Escape(a.Host.Name), Roles(a.Host), "[yellow]nothing deployed yet[/]", "", "", "", "", "-");
                continue;
            }
            if (a.Answer is not { } status)
            {
                table.AddRow(Markup.Escape(a.Host.Name), Roles(a.Host), "[red]unavailable[/]", "", "", "", "", Markup.Escape(a.Error ?? ""));
                continue;
            }
            table.AddRow(Markup.Escape(a.Host.Name), Roles(a.Host),
                status.Current is { } current ? Markup.Escape(current.Id) : "[yellow]nothing deployed yet[/]",
                status.Current is { } c ? Markup.Escape(ReleasesCommand.ShortRevision(c.Revision)) : "",
                Markup.Escape(status.RollbackTarget ?? "-"),
                status.Releases.ToString(System.Globalization.CultureInfo.InvariantCulture),
                status.LockedBy is null ? "free" : "held",
                status.LastAction is { } last ? Markup.Escape($"{last.Action} {last.Release ?? "-"}: {last.Outcome}") : "-");
        }
        env.Out.WriteLine($"{config.App} ({config.Strategy}) on {answers.Count} hosts");
        Write(env, table);
        return QueryExit(answers);
    }

    private static string Roles(FleetHost host) => Markup.Escape(string.Join(",", host.Roles));

    /// <summary>One host's answer to a read-only command: its --json output read as <typeparamref name="T"/>, or why there is none.</summary>
    private sealed record HostAnswer<T>(FleetHost Host, bool NeverDeployed, T? Answer, string? Error) where T : class;

    /// <summary>A host's entry in `status --json` with hosts.</summary>
    private sealed record HostStatus(string Host, IReadOnlyList<string> Roles, bool Deployed, StatusReport? Status, string? Error);

    /// <summary>A host's entry in `releases --json` with hosts.</summary>
    private sealed record HostReleases(string Host, bool Deployed, IReadOnlyList<ReleaseView>? Releases, string? Error);

    /// <summary>
    /// A read-only command's --json answer from every host, read with the record the command writes it with. An
    /// answer that is not one (another build, a damaged install) is that host's error, never a half-read table row.
    /// </summary>
    private static async Task<List<HostAnswer<T>>> QueryAsync<T>(CutoverConfig config, bool acceptNew, string command, CancellationToken ct, HostSelection? selection = null) where T : class
    {
        var results = await new FleetCommand(config, new SilentProgress(), acceptNew, selection).QueryAsync([command, "--json"], ct);
        return results.Select(r =>
        {
            if (!r.Ok) return new HostAnswer<T>(r.Host, r.NeverDeployed, null, r.NeverDeployed ? null : r.Error);
            var answer = Json.TryRead<T>(r.Stdout, out var problem);
            return new HostAnswer<T>(r.Host, false, answer, answer is null ? $"`cutover {command} --json` answered something Cutover cannot read ({problem}): {Json.Quote(r.Stdout.Trim())}" : null);
        }).ToList();
    }

    /// <summary>A host nothing was deployed to yet is an answer, not a failure; an unreachable or unreadable one is.</summary>
    private static int QueryExit<T>(List<HostAnswer<T>> answers) where T : class =>
        answers.All(a => a.Answer is not null || a.NeverDeployed) ? ExitCodes.Ok : ExitCodes.Failed;

    public static async Task<int> ReleasesAsync(CliEnvironment env, bool json, CutoverConfig config, bool acceptNew, HostSelection selection, CancellationToken ct)
    {
        var answers = await QueryAsync<List<ReleaseView>>(config, acceptNew, "releases", ct, selection);
        if (json)
        {
            env.Out.WriteLine(JsonSerializer.Serialize(answers.Select(a => new HostReleases(a.Host.Name, !a.NeverDeployed, a.Answer, a.Error)).ToList(), Json.Options));
            return QueryExit(answers);
        }
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None)
            .AddColumns("host", "", "id", "revision", "created (UTC)", "status", "note");
        foreach (var a in answers)
        {
            if (a.NeverDeployed || a.Answer is { Count: 0 })
            {
                table.AddRow(Markup.Escape(a.Host.Name), "", "-", "", "", "", "no releases yet");
                continue;
            }
            if (a.Answer is not { } releases)
            {
                table.AddRow(Markup.Escape(a.Host.Name), "", "", "", "", "[red]unavailable[/]", Markup.Escape(a.Error ?? ""));
                continue;
            }
            foreach (var rel in releases)
            {
                table.AddRow(Markup.Escape(a.Host.Name), rel.Current ? "[green]●[/]" : rel.RollbackTarget ? "[grey]○[/]" : "", Markup.Escape(rel.Id),
                    Markup.Escape(ReleasesCommand.ShortRevision(rel.Revision)), rel.Created.ToString("yyyy-MM-dd HH:mm:ss"),
                    Markup.Escape(rel.Status), Markup.Escape(rel.Current ? "current" : rel.RollbackTarget ? "rollback target" : rel.Failure ?? "-"));
            }
        }
        Write(env, table);
        return QueryExit(answers);
    }

    /// <summary>
    /// Every host goes back to the same release: the one named, or the rollback target they all agree on. When
    /// they disagree nothing is touched and the command says so.
    /// </summary>
    public static async Task<int> RollbackAsync(CliEnvironment env, bool json, IDeployProgress progress, CutoverConfig config, string? release, string lockWait,
        bool acceptNew, HostSelection selection, CancellationToken ct)
    {
        var rolling = System.Diagnostics.Stopwatch.StartNew();
        var build = Build();
        var target = release;
        if (target is null)
        {
            var statuses = await QueryAsync<StatusReport>(config, acceptNew, "status", ct, selection);
            var unavailable = statuses.Where(s => s.Answer is null).ToList();
            if (unavailable.Count > 0)
                throw new DeployException($"nothing was rolled back: {string.Join("; ", unavailable.Select(u => $"{u.Host.Name}: {u.Error}"))}");
            var targets = statuses.Select(s => (s.Host, Target: s.Answer!.RollbackTarget ?? "-")).ToList();
            if (targets.Select(t => t.Target).Distinct().Count() != 1 || targets[0].Target == "-")
                throw new DeployException("nothing was rolled back: the hosts do not agree on the release to roll back to (" +
                                          string.Join(", ", targets.Select(t => $"{t.Host.Name}: {t.Target}")) + "); name one: cutover rollback RELEASE");
            target = targets[0].Target;
        }
        var results = await new FleetCommand(config, progress, acceptNew, selection).RunAsync(
            ["rollback", "--json", "--lock-wait", lockWait, "--deployed-by", Environment.UserName, "--fleet-deploy", DeployActor.NewFleetDeployId(), target], build, ct);
        var rows = results.Select(HostRollbackOf).ToList();
        var ok = rows.All(r => r.Ok);
        if (ok && selection.Narrowed) await WarnMixedAsync(progress, config, selection, target, rows.Select(r => (r.Host, r.Release)).ToList(), acceptNew, ct);
        if (ok)
            await Cutover.Notify.WebhookNotifier.NotifyAsync(config.Notify, Cutover.Notify.NotifyPayload.ForRollback(config.App, string.Join(",", rows.Select(r => r.From).Distinct()),
                target, null, Environment.UserName, rows.FirstOrDefault(r => r.Error is not null)?.Error, rolling.Elapsed.TotalSeconds, $"on {rows.Count} hosts"), progress.Warning);
        if (json)
        {
            ((JsonProgress)progress).Result(new FleetRollbackResultEvent("rollback", config.App, ok ? "success" : "failed", target, rows));
            return ok ? ExitCodes.Ok : ExitCodes.Failed;
        }
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None).AddColumns("host", "from", "to", "outcome");
        foreach (var r in rows) table.AddRow(Markup.Escape(r.Host), Markup.Escape(r.From), Markup.Escape(r.Release), Markup.Escape(r.Ok ? "rolled back" : $"failed: {r.Error}"));
        Write(env, table);
        if (ok) env.Out.WriteLine($"rolled back {config.App} to {target} on {rows.Count} hosts");
        else env.Error.WriteLine($"error: the rollback to {target} failed on {string.Join(", ", rows.Where(r => !r.Ok).Select(r => r.Host))}");
        return ok ? ExitCodes.Ok : ExitCodes.Failed;
    }

    /// <summary>
    /// A host's `rollback --json`, by its last line: the result, or the error that ended it. A last line that is
    /// neither fails the host, whatever its exit status said.
    /// </summary>
    public static HostRollback HostRollbackOf(HostCommandResult r)
    {
        var last = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
        if (last is null) return new HostRollback(r.Host.Name, false, "-", "-", r.Error ?? "`cutover rollback --json` printed nothing");
        return ProgressStream<RollbackResultEvent>.TryRead(last, out var problem) switch
        {
            // The host's own words first: its stderr (r.Error) may hold only the first lines of this very JSON.
            RollbackResultEvent result => new HostRollback(r.Host.Name, r.Ok, result.From, result.Release, result.Error ?? r.Error),
            ProgressEvent.CommandFailed failed => new HostRollback(r.Host.Name, false, "-", "-", string.Join("; ", failed.Errors)),
            _ => new HostRollback(r.Host.Name, false, "-", "-",
                $"`cutover rollback --json` ended with a line that is neither its result nor an error ({problem}): {Json.Quote(last)}"),
        };
    }
}
