using System.CommandLine;
using System.Globalization;
using Cutover.Agent;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Progress;
using Spectre.Console;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover restart [PROCESS]` and `cutover scale TYPE=N...`: the agent changes the instances of the release that runs,
/// with a deploy's zero-downtime rules, progress, result and cancellation (SIGINT puts it back).
/// </summary>
public static class InstanceCommands
{
    public static Command Restart(CommonOptions common, CliEnvironment env)
    {
        var process = new Argument<string?>("PROCESS") { Arity = ArgumentArity.ZeroOrOne, Description = "Only this process type (web, or a name under processes:); every type when left out" };
        var command = new Command("restart", "Replace every instance of the running release one by one, start-first (the environment as it is now), without a failed request") { process, common.Json, common.Hosts, common.Roles, common.AcceptNewHostKeys };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            return CommandRunner.RunAsync(env, json, async () =>
            {
                var config = InstanceConfig(common, parse, "restart");
                var settings = config.SettingsOf<InstanceSettings>();
                var only = parse.GetValue(process);
                if (only is not null && Supervisor.AppRuntime.ConfiguredInstances(settings, only) is null)
                    throw new UsageException($"restart {only}: {config.File} has no such process type; it has {string.Join(", ", TypesOf(settings))}");
                if (common.Selection(parse, config) is { } selection)
                    return await OnHostsAsync(env, json, config, "restart", only is null ? [] : [only], selection, parse.GetValue(common.AcceptNewHostKeys), ct);
                // Resolved as a deploy resolves it (env_file, ${VAR}: a missing variable is exit 2 before anything moves).
                var environment = common.LoadConfig(parse, resolveEnvironment: true).Environment;
                return await RunAsync(env, json, config, "restart", release => new AgentServer.ActivateRequest(config.File, release, ReleaseDir(config, release), ConfigFiles: Layered(config),
                    Restart: true, Processes: only is null ? null : [only]), ct, environment.Variables.Count > 0 ? environment : null);
            });
        });
        return command;
    }

    public static Command Scale(CommonOptions common, CliEnvironment env)
    {
        var counts = new Argument<string[]>("TYPE=N") { Arity = ArgumentArity.OneOrMore, Description = "Process type and its number of instances, e.g. web=6 worker=3" };
        var command = new Command("scale", "Start or drain and stop instances one by one until each type runs N; kept across agent restarts and deploys until the config's count changes") { counts, common.Json, common.Hosts, common.Roles, common.AcceptNewHostKeys };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            return CommandRunner.RunAsync(env, json, async () =>
            {
                var config = InstanceConfig(common, parse, "scale");
                var wanted = ParseCounts(config, parse.GetValue(counts)!);
                if (common.Selection(parse, config) is { } selection)
                    return await OnHostsAsync(env, json, config, "scale", parse.GetValue(counts)!, selection, parse.GetValue(common.AcceptNewHostKeys), ct);
                return await RunAsync(env, json, config, "scale", release => new AgentServer.ActivateRequest(config.File, release, ReleaseDir(config, release), ConfigFiles: Layered(config), Scale: wanted), ct);
            });
        });
        return command;
    }

    /// <summary>Every TYPE=N checked against the config: one clear sentence for the first mistake, before the agent is asked anything.</summary>
    internal static IReadOnlyDictionary<string, int> ParseCounts(CutoverConfig config, IReadOnlyList<string> arguments)
    {
        var settings = config.SettingsOf<InstanceSettings>();
        var wanted = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var argument in arguments)
        {
            var parts = argument.Split('=');
            if (parts.Length != 2 || parts[0].Length == 0 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var instances))
                throw new UsageException($"scale: '{argument}' is not TYPE=N (a process type and a whole number of instances, e.g. web=6)");
            var type = parts[0];
            if (Supervisor.AppRuntime.ConfiguredInstances(settings, type) is null)
                throw new UsageException($"scale {argument}: {config.File} has no process type '{type}'; it has {string.Join(", ", TypesOf(settings))}");
            if (!wanted.TryAdd(type, instances)) throw new UsageException($"scale: {type} is given twice");
            if (type == ProcessConfigReader.Web && instances == 0)
                throw new UsageException("scale web=0: web needs at least 1 instance to answer requests; `cutover stop` stops the app");
            if (settings.Processes.FirstOrDefault(p => p.Name == type) is { Singleton: true } && instances > 1)
                throw new UsageException($"scale {argument}: {type} is a singleton (never two at once), so it runs 0 or 1 instance");
            if (instances > MaxInstances) throw new UsageException($"scale {argument}: at most {MaxInstances} instances of a type");
        }
        return wanted;
    }

    /// <summary>The names whose value differs between the live release's env file and the environment now (added and removed ones too), in order.</summary>
    private static List<string> ChangedNames(AppEnvironment? live, AppEnvironment now)
    {
        var before = live?.Variables ?? new Dictionary<string, string>();
        return before.Keys.Union(now.Variables.Keys)
            .Where(n => !before.TryGetValue(n, out var a) || !now.Variables.TryGetValue(n, out var b) || a != b)
            .Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The same bound the config reader puts on instances.</summary>
    private const int MaxInstances = 256;

    private static IEnumerable<string> TypesOf(InstanceSettings settings) => settings.Processes.Select(p => p.Name).Prepend(ProcessConfigReader.Web);

    /// <summary>Every -c file when there are several, as a deploy sends them; null for one.</summary>
    private static IReadOnlyList<string>? Layered(CutoverConfig config) => config.Files is { Count: > 1 } files ? files : null;

    private static string ReleaseDir(CutoverConfig config, string release) => new Releases.RootLayout(config.Root).ReleaseDir(Releases.ReleaseId.Parse(release));

    /// <param name="environment">restart: the app's environment resolved now; when it differs from the live release's env file, that file is rewritten first (and put back if the restart fails).</param>
    private static async Task<int> RunAsync(CliEnvironment env, bool json, CutoverConfig config, string command, Func<string, AgentServer.ActivateRequest> requestFor, CancellationToken cancellationToken,
        AppEnvironment? environment = null)
    {
        var started = DateTimeOffset.UtcNow;
        using var client = new AgentClient(AgentHome.FromEnvironment());
        if (!await client.IsRunningAsync(cancellationToken)) throw new DeployException("the agent is not running; `cutover deploy` starts it, or run `cutover agent`");
        var view = (await client.AppsAsync(cancellationToken)).FirstOrDefault(a => a.App == config.App);
        if (view?.Release is not { } release) throw new DeployException($"the agent runs no release of '{config.App}'; deploy it first");
        var progress = env.Progress(json);
        var layout = new Releases.RootLayout(config.Root);
        var releaseId = Releases.ReleaseId.Parse(release);
        var previousEnvFile = File.Exists(layout.EnvFile(releaseId)) ? await File.ReadAllTextAsync(layout.EnvFile(releaseId), cancellationToken) : null;
        var changed = environment is null ? [] : ChangedNames(Releases.ReleaseEnvironmentFile.Read(layout, releaseId), environment);
        if (changed.Count > 0)
        {
            // Atomic and 0600, as a deploy writes it: the agent starts every replaced instance with it.
            Releases.ReleaseEnvironmentFile.Write(layout, releaseId, environment!);
            progress.Info($"environment changed ({string.Join(", ", changed)}): release {release}'s env file rewritten; every restarted instance gets it");
        }
        ActivationResult result;
        try
        {
            result = await client.ActivateAsync(config.App, requestFor(release), progress, cancellationToken);
        }
        catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested)
        {
            result = new ActivationResult(ActivationOutcome.Cancelled, e.Message);
        }
        if (changed.Count > 0)
        {
            // A restart that did not complete leaves the running instances on the old environment: so does the file, so
            // an agent restart or `cutover start` brings back what ran.
            if (!result.Succeeded && previousEnvFile is not null)
                Platform.AtomicFile.WriteAllText(layout.EnvFile(releaseId), previousEnvFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            else if (!result.Succeeded) File.Delete(layout.EnvFile(releaseId));
            new History.HistoryLog(layout, environment!.Redactor).Append(new History.HistoryEntry
            {
                Action = command, Release = release, User = Environment.UserName, Started = started, Finished = DateTimeOffset.UtcNow,
                Outcome = result.Succeeded ? "success" : result.Outcome == ActivationOutcome.Cancelled ? "cancelled" : "failed",
                Error = result.Succeeded ? null : environment.Redactor.Redact(result.Error ?? ""), EnvironmentChanged = changed,
            });
        }
        var after = (await client.AppsAsync(CancellationToken.None)).FirstOrDefault(a => a.App == config.App);
        var instances = after?.Counts?.ToDictionary(c => c.Process, c => c.Instances) ?? [];
        if (json)
        {
            ((JsonProgress)progress).Result(new Output.InstanceCommandResultEvent(command, config.App, System.Text.Json.JsonNamingPolicy.SnakeCaseLower.ConvertName(result.Outcome.ToString()), release, result.Error, instances));
        }
        else
        {
            var counts = string.Join(", ", instances.Select(c => $"{c.Key} {c.Value}"));
            var message = result.Outcome switch
            {
                ActivationOutcome.Live => $"{command}: {config.App} release {release} ({counts})",
                ActivationOutcome.Cancelled => $"{command} of {config.App} cancelled: {result.Error} ({counts})",
                _ => $"{command} of {config.App} failed: {result.Error} ({counts})",
            };
            if (env.Interactive) env.Console.MarkupLine(result.Succeeded ? $"[green bold]{Markup.Escape(message)}[/]" : $"[red bold]{Markup.Escape(message)}[/]");
            else if (result.Succeeded) env.Out.WriteLine(message);
            else env.Error.WriteLine($"error: {message}");
        }
        return result.Succeeded ? ExitCodes.Ok : result.Outcome == ActivationOutcome.Cancelled ? ExitCodes.Cancelled : ExitCodes.Failed;
    }

    /// <summary>
    /// With hosts: the same command on each selected host (fleet.parallel at a time), with the build and config its last
    /// deploy left there, so a restart reads that host's environment; one row per host, exit 1 if any failed.
    /// A type a host's roles do not run is refused by that host: narrow with --roles.
    /// </summary>
    private static async Task<int> OnHostsAsync(CliEnvironment env, bool json, CutoverConfig config, string command, IReadOnlyList<string> arguments,
        Fleet.HostSelection selection, bool acceptNew, CancellationToken cancellationToken)
    {
        // A named type goes only to the hosts that run it (its roles; a singleton's one host): another host has none to
        // restart or scale, and a singleton scaled to 1 elsewhere would be a second one.
        var types = arguments.Select(a => a.Split('=')[0]).ToList();
        if (types.Count > 0 && config.Fleet is { } fleet)
        {
            var settings = config.SettingsOf<InstanceSettings>();
            var running = selection.Hosts.Where(h => types.All(t => fleet.Runs(h, t, settings))).ToList();
            if (running.Count == 0)
                throw new UsageException($"{command}: none of the selected hosts ({string.Join(", ", selection.Hosts.Select(h => h.Name))}) runs {string.Join(" and ", types)}");
            selection = selection with { Hosts = running };
        }
        var progress = env.Progress(json);
        var results = await new Fleet.FleetCommand(config, progress, acceptNew, selection).QueryAsync([command, .. arguments, "--json"], cancellationToken);
        var rows = results.Select(r =>
        {
            var last = r.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault();
            return (last is null ? null : ProgressStream<Output.InstanceCommandResultEvent>.TryRead(last, out _)) switch
            {
                Output.InstanceCommandResultEvent result => new Output.HostInstanceCommand(r.Host.Name, r.Ok && result.Outcome == "live", result.Outcome, result.Error ?? r.Error,
                    string.Join(", ", result.Instances.Select(c => $"{c.Key} {c.Value}"))),
                ProgressEvent.CommandFailed failed => new Output.HostInstanceCommand(r.Host.Name, false, "failed", string.Join("; ", failed.Errors), "-"),
                _ => new Output.HostInstanceCommand(r.Host.Name, false, "failed", r.Error ?? $"`cutover {command} --json` did not end with its result", "-"),
            };
        }).ToList();
        var ok = rows.All(r => r.Ok);
        if (json)
        {
            ((JsonProgress)progress).Result(new Output.FleetInstanceCommandResultEvent(command, config.App, ok ? "live" : "failed",
                rows));
            return ok ? ExitCodes.Ok : ExitCodes.Failed;
        }
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None).AddColumns("host", "outcome", "instances");
        foreach (var r in rows) table.AddRow(Markup.Escape(r.Host), Markup.Escape(r.Ok ? r.Outcome : $"failed: {r.Error}"), Markup.Escape(r.Instances));
        if (!env.Interactive) env.Console.Profile.Width = 400;
        env.Console.Write(table);
        if (ok) env.Out.WriteLine($"{command}: {config.App} on {rows.Count} hosts");
        else env.Error.WriteLine($"error: {command} failed on {string.Join(", ", rows.Where(r => !r.Ok).Select(r => r.Host))}");
        return ok ? ExitCodes.Ok : ExitCodes.Failed;
    }

    /// <summary>The (layered) -c files, without resolving the environment: the agent takes it from the release's env file.</summary>
    private static CutoverConfig InstanceConfig(CommonOptions common, ParseResult parse, string command)
    {
        var config = common.LoadConfig(parse);
        if (!config.RunsInstances) throw new UsageException($"{command} is for strategies rolling and blue-green; {config.File} uses strategy: {config.Strategy}");
        return config;
    }
}
