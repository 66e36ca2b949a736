using System.CommandLine;
using System.Text.Json;
using Cutover.Agent;
using Cutover.Config;
using Cutover.Deploy;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Cutover.Cli.Commands;

/// <summary>`cutover agent`, `stop`, `start` and `logs`: the commands of the rolling strategy's agent.</summary>
public static class AgentCommands
{
    /// <summary>How to run this very binary again, as `cutover agent`.</summary>
    public static IReadOnlyList<string> SelfCommand(params string[] args)
    {
        var process = Environment.ProcessPath!;
        var self = Path.GetFileNameWithoutExtension(process) == "dotnet"
            ? new[] { process, "exec", Path.Combine(AppContext.BaseDirectory, "cutover.dll") }
            : new[] { process };
        return [.. self, .. args];
    }

    public static IInstanceActivator? ActivatorFor(CutoverConfig config, AgentClient client) =>
        config.RunsInstances ? new AgentActivator(client, config.File, config.App, SelfCommand("agent")) : null;

    public static Command Agent(CliEnvironment env)
    {
        var command = new Command("agent", "Run the agent in the foreground: the proxy and instances of every rolling app on this host");
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            // Before the first socket: the proxy forwards on the threads that read the sockets.
            Cutover.Platform.InlineSocketCompletions.Enable();
            using var loggers = LoggerFactory.Create(b => b
                .SetMinimumLevel(LogLevel.Information)
                .AddFilter("Microsoft", LogLevel.Warning)
                .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; o.UseUtcTimestamp = true; }));
            var home = AgentHome.FromEnvironment();
            await using var agent = new AgentServer(home, loggers);
            await Cutover.Platform.ThreadPoolContext.Run(() => agent.RunAsync(ct));
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command Stop(CommonOptions common, CliEnvironment env) => Simple(common, env, "stop", "Drain and stop the app's instances (the proxy answers 503)");

    public static Command Start(CommonOptions common, CliEnvironment env) => Simple(common, env, "start", "Start the app's instances again from its current release");

    private static Command Simple(CommonOptions common, CliEnvironment env, string action, string description)
    {
        var command = new Command(action, description);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var config = RollingConfig(parse.GetValue(common.Config)!);
            using var client = new AgentClient(AgentHome.FromEnvironment());
            if (!await client.IsRunningAsync(ct)) throw new DeployException("the agent is not running; `cutover deploy` starts it, or run `cutover agent`");
            var error = await client.PostAsync(config.App, action, ct);
            if (error is not null) throw new DeployException(error);
            env.Out.WriteLine($"{action}: {config.App}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command Logs(CommonOptions common, CliEnvironment env)
    {
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new lines, across rotations and restarts" };
        var instance = new Option<int?>("--instance") { Description = "Only this instance (its number, from `cutover status`)" };
        var lines = new Option<int>("--lines", "-n") { Description = "How many recent lines to print first", DefaultValueFactory = _ => 100 };
        var command = new Command("logs", "Print the app's instance logs") { follow, instance, lines };
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var config = RollingConfig(parse.GetValue(common.Config)!);
            var dir = AgentHome.FromEnvironment().AppLogs(config.App);
            var filter = parse.GetValue(instance) is { } n ? $" {config.App}-{n} " : null;
            var tail = new Supervisor.LogTail(dir);
            foreach (var line in tail.Recent(parse.GetValue(lines), filter)) env.Out.WriteLine(line);
            if (!parse.GetValue(follow)) return ExitCodes.Ok;
            try
            {
                await foreach (var line in tail.FollowAsync(filter, ct)) env.Out.WriteLine(line);
            }
            catch (OperationCanceledException)
            {
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The instance table for `cutover status` of a rolling app; the agent's view, live.</summary>
    public static async Task<JsonElement?> AppStatusAsync(CutoverConfig config, CancellationToken cancellationToken)
    {
        using var client = new AgentClient(AgentHome.FromEnvironment());
        if (!await client.IsRunningAsync(cancellationToken)) return null;
        foreach (var app in (await client.AppsAsync(cancellationToken)).EnumerateArray())
            if (app.GetProperty("app").GetString() == config.App) return app.Clone();
        return null;
    }

    /// <summary>What the agent had to say about its own start (a corrupt state.json restored): empty when all was well.</summary>
    public static async Task<IReadOnlyList<string>> AgentWarningsAsync(CancellationToken cancellationToken)
    {
        using var client = new AgentClient(AgentHome.FromEnvironment());
        if (!await client.IsRunningAsync(cancellationToken)) return [];
        return await client.WarningsAsync(cancellationToken);
    }

    public static void RenderInstances(CliEnvironment env, JsonElement? app)
    {
        if (app is not { } a)
        {
            env.Out.WriteLine("instances: the agent is not running this app");
            return;
        }
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None)
            .AddColumns("instance", "release", "runs as", "address", "state", "uptime", "memory", "restarts");
        foreach (var i in a.GetProperty("instances").EnumerateArray())
        {
            string Text(string name) => i.GetProperty(name).ValueKind == JsonValueKind.Null ? "-" : i.GetProperty(name).ToString();
            var uptime = i.GetProperty("uptime_seconds").ValueKind == JsonValueKind.Number ? $"{i.GetProperty("uptime_seconds").GetDouble():0}s" : "-";
            var state = Text("state") + (i.GetProperty("problem").ValueKind == JsonValueKind.String && Text("state") != "ready" ? $" ({Text("problem")})" : "");
            var runsAs = i.TryGetProperty("runs_as", out var r) && r.ValueKind == JsonValueKind.String ? r.GetString()! : Text("pid");
            var address = i.TryGetProperty("address", out var ad) && ad.ValueKind == JsonValueKind.String ? ad.GetString()! : Text("port");
            table.AddRow(Markup.Escape(Text("id")), Markup.Escape(Text("release")), Markup.Escape(runsAs), Markup.Escape(address), Markup.Escape(state), uptime,
                $"{i.GetProperty("memory_bytes").GetInt64() / (1024.0 * 1024):0.0} MiB", Text("restarts"));
        }
        env.Out.WriteLine($"proxy {a.GetProperty("proxy").GetString()}, live release {a.GetProperty("release")}");
        if (a.TryGetProperty("previous", out var previous) && previous.ValueKind == JsonValueKind.Object)
            env.Out.WriteLine($"previous set: release {previous.GetProperty("release")}, {previous.GetProperty("instances")} instances warm out of rotation until {previous.GetProperty("until").GetDateTimeOffset():yyyy-MM-dd HH:mm:ss}Z");
        env.Console.Write(table);
    }

    private static CutoverConfig RollingConfig(string file)
    {
        var config = ConfigLoader.Load(file);
        if (!config.RunsInstances) throw new UsageException($"this command is for strategies rolling and blue-green; {file} uses strategy: {config.Strategy}");
        return config;
    }
}
