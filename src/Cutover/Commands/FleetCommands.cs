using System.Text.Json;
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

    public static async Task<int> DeployAsync(CliEnvironment env, bool json, IDeployProgress progress, CutoverConfig config, FleetDeployRequest request, CancellationToken ct)
    {
        var result = await new FleetDeployer(config, progress, Build(), Environment.GetEnvironmentVariable).DeployAsync(request, ct);
        if (json)
        {
            ((JsonProgress)progress).Emit(new
            {
                @event = "result",
                command = "deploy",
                app = config.App,
                outcome = result.Outcome.Word(),
                release = result.Release,
                error = result.Error,
                hosts = result.Hosts.Select(h => new { host = h.Host, outcome = h.Outcome, release = h.Release, previous = h.Previous, error = h.Error }),
                seconds = Math.Round(result.Seconds, 3),
            });
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

    public static async Task<int> StatusAsync(CliEnvironment env, bool json, CutoverConfig config, bool acceptNew, CancellationToken ct)
    {
        var parsed = await QueryAsync(config, acceptNew, "status", ct);
        if (json) return WriteJson(env, parsed, "status");
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None)
            .AddColumns("host", "current", "revision", "rollback to", "releases", "lock", "last action");
        foreach (var (r, doc) in parsed)
        {
            if (r.NeverDeployed)
            {
                table.AddRow(Markup.Escape(r.Host.Name), "[yellow]nothing deployed yet[/]", "", "", "", "", "-");
                continue;
            }
            if (doc is not { } d)
            {
                table.AddRow(Markup.Escape(r.Host.Name), "[red]unavailable[/]", "", "", "", "", Markup.Escape(r.Error ?? ""));
                continue;
            }
            var current = d.GetProperty("current");
            var last = d.GetProperty("last_action");
            table.AddRow(Markup.Escape(r.Host.Name),
                current.ValueKind == JsonValueKind.Object ? Markup.Escape(current.GetProperty("id").GetString()!) : "[yellow]nothing deployed yet[/]",
                current.ValueKind == JsonValueKind.Object ? Markup.Escape(ReleasesCommand.ShortRevision(current.GetProperty("revision").GetString())) : "",
                Markup.Escape(Text(d.GetProperty("rollback_target"))),
                Text(d.GetProperty("releases")),
                d.GetProperty("locked_by").ValueKind == JsonValueKind.Null ? "free" : "held",
                last.ValueKind == JsonValueKind.Object ? Markup.Escape($"{Text(last.GetProperty("action"))} {Text(last.GetProperty("release"))}: {Text(last.GetProperty("outcome"))}") : "-");
        }
        env.Out.WriteLine($"{config.App} ({config.Strategy}) on {parsed.Count} hosts");
        Write(env, table);
        return QueryExit(parsed);
    }

    /// <summary>A read-only command's --json answer from every host, parsed (null where the host gave none).</summary>
    private static async Task<List<(HostCommandResult r, JsonElement? doc)>> QueryAsync(CutoverConfig config, bool acceptNew, string command, CancellationToken ct)
    {
        var results = await new FleetCommand(config, new SilentProgress(), acceptNew).QueryAsync([command, "--json"], ct);
        return results.Select(r => (r, doc: r.Ok ? Parse(r.Stdout) : null)).ToList();
    }

    /// <summary>One entry per host: its name, whether a deploy reached it, the command's answer under <paramref name="field"/>, and any error.</summary>
    private static int WriteJson(CliEnvironment env, List<(HostCommandResult r, JsonElement? doc)> parsed, string field)
    {
        env.Out.WriteLine(JsonSerializer.Serialize(parsed.Select(p => new Dictionary<string, object?>
        {
            ["host"] = p.r.Host.Name,
            ["deployed"] = !p.r.NeverDeployed,
            [field] = p.doc,
            ["error"] = p.r.NeverDeployed ? null : p.r.Error,
        }), Json.Options));
        return QueryExit(parsed);
    }

    /// <summary>A host nothing was deployed to yet is an answer, not a failure; an unreachable one is.</summary>
    private static int QueryExit(List<(HostCommandResult r, JsonElement? doc)> parsed) =>
        parsed.All(p => p.r.Ok || p.r.NeverDeployed) ? ExitCodes.Ok : ExitCodes.Failed;

    public static async Task<int> ReleasesAsync(CliEnvironment env, bool json, CutoverConfig config, bool acceptNew, CancellationToken ct)
    {
        var parsed = await QueryAsync(config, acceptNew, "releases", ct);
        if (json) return WriteJson(env, parsed, "releases");
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None)
            .AddColumns("host", "", "id", "revision", "created (UTC)", "status", "note");
        foreach (var (r, doc) in parsed)
        {
            if (r.NeverDeployed || doc is { ValueKind: JsonValueKind.Array } && doc.Value.GetArrayLength() == 0)
            {
                table.AddRow(Markup.Escape(r.Host.Name), "", "-", "", "", "", "no releases yet");
                continue;
            }
            if (doc is not { } d)
            {
                table.AddRow(Markup.Escape(r.Host.Name), "", "", "", "", "[red]unavailable[/]", Markup.Escape(r.Error ?? ""));
                continue;
            }
            foreach (var rel in d.EnumerateArray())
            {
                var isCurrent = rel.GetProperty("current").GetBoolean();
                var isTarget = rel.GetProperty("rollback_target").GetBoolean();
                table.AddRow(Markup.Escape(r.Host.Name), isCurrent ? "[green]●[/]" : isTarget ? "[grey]○[/]" : "", Markup.Escape(Text(rel.GetProperty("id"))),
                    Markup.Escape(ReleasesCommand.ShortRevision(rel.GetProperty("revision").GetString())), rel.GetProperty("created").GetDateTimeOffset().ToString("yyyy-MM-dd HH:mm:ss"),
                    Markup.Escape(Text(rel.GetProperty("status"))), Markup.Escape(isCurrent ? "current" : isTarget ? "rollback target" : Text(rel.GetProperty("failure"))));
            }
        }
        Write(env, table);
        return QueryExit(parsed);
    }

    /// <summary>
    /// Every host goes back to the same release: the one named, or the rollback target they all agree on. When
    /// they disagree nothing is touched and the command says so.
    /// </summary>
    public static async Task<int> RollbackAsync(CliEnvironment env, bool json, IDeployProgress progress, CutoverConfig config, string? release, string lockWait,
        bool acceptNew, CancellationToken ct)
    {
        var build = Build();
        var target = release;
        if (target is null)
        {
            var statuses = await new FleetCommand(config, new SilentProgress(), acceptNew).QueryAsync(["status", "--json"], ct);
            var unavailable = statuses.Where(s => !s.Ok).ToList();
            if (unavailable.Count > 0)
                throw new DeployException($"nothing was rolled back: {string.Join("; ", unavailable.Select(u => $"{u.Host.Name}: {u.Error}"))}");
            var targets = statuses.Select(s => (s.Host, Target: Text(Parse(s.Stdout)!.Value.GetProperty("rollback_target")))).ToList();
            if (targets.Select(t => t.Target).Distinct().Count() != 1 || targets[0].Target == "-")
                throw new DeployException("nothing was rolled back: the hosts do not agree on the release to roll back to (" +
                                          string.Join(", ", targets.Select(t => $"{t.Host.Name}: {t.Target}")) + "); name one: cutover rollback RELEASE");
            target = targets[0].Target;
        }
        var results = await new FleetCommand(config, progress, acceptNew).RunAsync(["rollback", "--json", "--lock-wait", lockWait, target], build, ct);
        var rows = results.Select(r =>
        {
            var last = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
            var doc = last is null ? null : Parse(last);
            string Field(string name) => doc is { } d && d.TryGetProperty(name, out var v) ? Text(v) : "-";
            return new { host = r.Host.Name, ok = r.Ok, from = Field("from"), release = Field("release"), error = r.Error ?? (doc is { } e && e.TryGetProperty("errors", out var errs) ? errs.ToString() : null) };
        }).ToList();
        var ok = rows.All(r => r.ok);
        if (json)
        {
            ((JsonProgress)progress).Emit(new { @event = "result", command = "rollback", app = config.App, outcome = ok ? "success" : "failed", release = target, hosts = rows });
            return ok ? ExitCodes.Ok : ExitCodes.Failed;
        }
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None).AddColumns("host", "from", "to", "outcome");
        foreach (var r in rows) table.AddRow(Markup.Escape(r.host), Markup.Escape(r.from), Markup.Escape(r.release), Markup.Escape(r.ok ? "rolled back" : $"failed: {r.error}"));
        Write(env, table);
        if (ok) env.Out.WriteLine($"rolled back {config.App} to {target} on {rows.Count} hosts");
        else env.Error.WriteLine($"error: the rollback to {target} failed on {string.Join(", ", rows.Where(r => !r.ok).Select(r => r.host))}");
        return ok ? ExitCodes.Ok : ExitCodes.Failed;
    }

    private static JsonElement? Parse(string text)
    {
        try
        {
            return JsonDocument.Parse(text).RootElement.Clone();
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Text(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => "-",
        JsonValueKind.String => e.GetString()!,
        _ => e.ToString(),
    };
}
