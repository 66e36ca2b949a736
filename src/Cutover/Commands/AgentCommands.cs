using System.CommandLine;
using System.Text.Json;
using Cutover.Agent;
using Cutover.Config;
using Cutover.Deploy;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Cutover.Cli.Commands;

/// <summary>`cutover agent`, `stop` and `start`: the commands of the rolling strategy's agent (`logs` is LogsCommand).</summary>
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

    /// <param name="roles">A fleet host's roles (`--host-roles`, given by the deployer); null: every role.</param>
    public static IInstanceActivator? ActivatorFor(CutoverConfig config, AgentClient client, IReadOnlyList<string>? roles = null) =>
        config.RunsInstances ? new AgentActivator(client, config.File, config.App, SelfCommand("agent", "--quiet"), roles, config.Files) : null;

    public static Command Agent(CliEnvironment env)
    {
        var quiet = new Option<bool>("--quiet") { Description = "Log only to agent.log, not to stdout (how `cutover deploy` starts it in the background)" };
        var logMaxSize = new Option<string>("--log-max-size") { Description = "Size at which agent.log is rotated (e.g. 10MB)", DefaultValueFactory = _ => "10MB" };
        var logRetain = new Option<int>("--log-retain") { Description = "How many rotated agent logs to keep", DefaultValueFactory = _ => 5 };
        var takeOver = new Option<string?>("--take-over") { Description = "Internal: take over from the running agent through this socket (what `agent upgrade` runs)", Hidden = true };
        var version = new Option<bool>("--version") { Description = "Print this cutover's version and the running agent's, with since when it runs" };
        var metricsListen = new Option<string?>("--metrics-listen") { Description = $"Where to serve Prometheus metrics at /metrics: HOST:PORT, or off (default: ${Cutover.Metrics.MetricsAddress.Variable}, else {Cutover.Metrics.MetricsAddress.Default})" };
        var command = new Command("agent", "Run the agent in the foreground: the proxy and instances of every rolling app on this host") { quiet, logMaxSize, logRetain, takeOver, version, metricsListen, Upgrade(env) };
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            if (parse.GetValue(version)) return await PrintVersionsAsync(env, ct);
            if (!Config.ByteSize.TryParse(parse.GetValue(logMaxSize)!, out var maxBytes, out var sizeError))
                throw new UsageException($"--log-max-size: {sizeError}");
            if (maxBytes < 1024) throw new UsageException($"--log-max-size must be at least 1KB, got {parse.GetValue(logMaxSize)}");
            if (parse.GetValue(logRetain) < 0) throw new UsageException($"--log-retain must be 0 or more, got {parse.GetValue(logRetain)}");
            var metricsAddress = Cutover.Metrics.MetricsAddress.Resolve(parse.GetValue(metricsListen), Environment.GetEnvironmentVariable);
            // Before the first socket, and before anything is touched: a bad socket thread count is refused here.
            Cutover.Platform.InlineSocketCompletions.Enable();
            var home = AgentHome.FromEnvironment();
            var takeOverChannel = parse.GetValue(takeOver);
            // First of all, before agent.log is opened: a second agent touches nothing of the first one's home. A
            // taking-over agent gets the lock from the old one instead (and only appends to agent.log until it commits).
            var homeLock = takeOverChannel is null ? AgentHomeLock.Acquire(home) : null;
            using var loggers = LoggerFactory.Create(b =>
            {
                // YARP logs two info lines per proxied request and ASP.NET Core one per control request: only their
                // warnings come through. A line per request is the opt-in access log (logs.access_log), not agent.log.
                b.SetMinimumLevel(LogLevel.Information)
                    .AddFilter("Microsoft", LogLevel.Warning)
                    .AddFilter("Yarp", LogLevel.Warning)
                    .AddFilter("System.Net.Http", LogLevel.Warning)
                    .AddProvider(new Cutover.Logging.FileLoggerProvider(
                        new Cutover.Logging.RotatingLogFile(home.AgentLog, "agent.", maxBytes, parse.GetValue(logRetain))));
                if (!parse.GetValue(quiet))
                    b.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ "; o.UseUtcTimestamp = true; });
            });
            if (takeOverChannel is not null)
                return await Cutover.Platform.ThreadPoolContext.Run(() => AgentServer.TakeOverAsync(home, takeOverChannel, loggers, ct));
            await using var agent = new AgentServer(home, homeLock!, loggers) { MetricsListen = metricsAddress };
            await Cutover.Platform.ThreadPoolContext.Run(() => agent.RunAsync(ct));
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>`cutover agent upgrade [--binary PATH]`: the running agent hands over to a new one without failing a request.</summary>
    private static Command Upgrade(CliEnvironment env)
    {
        var binary = new Option<string?>("--binary") { Description = "The cutover to run the new agent with (an executable, or a cutover.dll for dotnet); default: this cutover" };
        var command = new Command("upgrade", "Hand the running agent over to a new one (this cutover, or --binary): same sockets and instances, no request failed") { binary };
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var newAgent = NewAgentCommand(parse.GetValue(binary));
            using var client = new AgentClient(AgentHome.FromEnvironment());
            if (!await client.IsRunningAsync(ct)) throw new DeployException("the agent is not running, so there is nothing to upgrade; `cutover deploy` starts it with this cutover");
            await UpgradeAgentAsync(env.Out.WriteLine, client, newAgent, ct);
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The command that runs the new agent: --binary (a cutover.dll goes through this dotnet), or this very cutover.</summary>
    private static IReadOnlyList<string> NewAgentCommand(string? binary)
    {
        if (binary is null) return SelfCommand();
        var path = Path.GetFullPath(binary);
        if (Directory.Exists(path)) throw new UsageException($"--binary {binary} is a directory; give the cutover executable (or cutover.dll) in it");
        if (!File.Exists(path)) throw new UsageException($"--binary {binary}: no such file");
        if (path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase))
        {
            var dotnet = Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet" ? Environment.ProcessPath! : "dotnet";
            return [dotnet, "exec", path];
        }
        if ((File.GetUnixFileMode(path) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) == 0)
            throw new UsageException($"--binary {binary} is not executable (chmod +x it)");
        return [path];
    }

    /// <summary>
    /// When an agent runs and it is another version than this cutover, hands it over to this cutover (the fleet session
    /// on a host, after the deploy installed a new build there). No agent: nothing to do, the activation starts this one.
    /// </summary>
    public static async Task UpgradeIfOtherVersionAsync(Action<string> say, AgentClient client, CancellationToken cancellationToken)
    {
        if (!await client.IsRunningAsync(cancellationToken)) return;
        AgentInfo running;
        try
        {
            running = await client.InfoAsync(cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new DeployException($"the agent does not answer on its socket ({e.Message}), so it cannot be upgraded to cutover {CutoverVersion.Current}");
        }
        if (running.Version == CutoverVersion.Current) return;
        await UpgradeAgentAsync(say, client, SelfCommand(), cancellationToken);
    }

    /// <summary>
    /// Runs the upgrade and waits until the old agent has left and the new one answers; prints both versions. Throws
    /// (exit 1) when it did not happen: the old agent then serves on.
    /// </summary>
    public static async Task UpgradeAgentAsync(Action<string> say, AgentClient client, IReadOnlyList<string> newAgent, CancellationToken cancellationToken)
    {
        var before = await client.InfoAsync(cancellationToken);
        if (before.Version is null)
            throw new DeployException($"the running agent (pid {before.Pid}) predates `cutover agent upgrade` and cannot hand over; " +
                                      "stop it (kill -TERM it: its process instances stop with it) and deploy to start this cutover's agent");
        say($"upgrading the agent {before.Version ?? "(version unknown)"} (pid {before.Pid}) to {string.Join(' ', newAgent)}");
        AgentUpgraded upgraded;
        try
        {
            upgraded = await client.UpgradeAsync(newAgent);
        }
        catch (AgentRefusedException e)
        {
            throw new DeployException($"the agent was not upgraded: {e.Message}; the agent {before.Version} (pid {before.Pid}) serves on");
        }
        catch (HttpRequestException e)
        {
            // The agent died under the upgrade (or the new one took over and the old one died before answering).
            throw new DeployException($"the agent (pid {before.Pid}) stopped answering during the upgrade ({e.Message}); " +
                                      "`cutover agent --version` says which agent serves now (a new `cutover agent` or deploy recovers if none does)");
        }
        if (upgraded.PausedUntil is { } pausedUntil)
        {
            // A pause holds requests in the old agent, maybe for minutes: the command does not wait for it.
            say($"the old agent (pid {upgraded.OldPid}) keeps the requests its pause holds: `cutover resume` (at the new agent, which passes it on) " +
                $"releases them, or at {pausedUntil:HH:mm:ss}Z they get 503; then it drains and leaves");
        }
        // The old agent finishes its requests (up to drain_timeout) and leaves; bounded, then the new one must answer.
        else if (!await AgentClient.WaitUntilGoneAsync(upgraded.OldPid, TimeSpan.FromMinutes(5), cancellationToken))
            say($"warning: the old agent (pid {upgraded.OldPid}) is still finishing its requests after 5 minutes");
        AgentInfo after;
        var asked = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                after = await client.InfoAsync(cancellationToken);
            }
            catch (HttpRequestException e)
            {
                throw new DeployException($"the new agent (pid {upgraded.NewPid}) took over and the old one left, but the new one does not answer ({e.Message}); " +
                                          "a new `cutover agent` (or a deploy) starts one and recovers the apps");
            }
            // A leaving agent that still runs may answer for a moment before it stops accepting on agent.sock.
            if (after.Pid == upgraded.NewPid || after.Pid != upgraded.OldPid || asked.Elapsed > TimeSpan.FromSeconds(10)) break;
            await Task.Delay(50, cancellationToken);
        }
        if (after.Pid != upgraded.NewPid)
            throw new DeployException($"the new agent (pid {upgraded.NewPid}) took over, but pid {after.Pid} answers on the control socket now");
        say($"agent upgraded: {upgraded.OldVersion} (pid {upgraded.OldPid}) -> {upgraded.NewVersion} (pid {upgraded.NewPid})");
    }

    /// <summary>`cutover agent --version`: this cutover's version, and the running agent's with since when it runs.</summary>
    private static async Task<int> PrintVersionsAsync(CliEnvironment env, CancellationToken cancellationToken)
    {
        env.Out.WriteLine($"cutover {CutoverVersion.Current}");
        using var client = new AgentClient(AgentHome.FromEnvironment());
        if (!await client.IsRunningAsync(cancellationToken))
        {
            env.Out.WriteLine("agent: not running");
            return ExitCodes.Ok;
        }
        env.Out.WriteLine(AgentLine(await client.InfoAsync(cancellationToken)));
        return ExitCodes.Ok;
    }

    /// <summary>"agent 0.1.0 (pid 123), running since ... (up 2h 3m)", or what an older agent can say.</summary>
    public static string AgentLine(AgentInfo info) =>
        $"agent {info.Version ?? "(version unknown: an agent older than this cutover)"} (pid {info.Pid})" +
        (info.Since is { } since ? $", running since {since.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z (up {Uptime(DateTimeOffset.UtcNow - since)})" : "");

    private static string Uptime(TimeSpan up) =>
        up.TotalHours >= 1 ? $"{(int)up.TotalHours}h {up.Minutes}m" : up.TotalMinutes >= 1 ? $"{up.Minutes}m {up.Seconds}s" : $"{up.Seconds}s";

    /// <summary>The agent's info when one runs (for status and deploy's version check); null when none answers.</summary>
    public static Command Stop(CommonOptions common, CliEnvironment env) => Simple(common, env, "stop", "Drain and stop the app's instances (the proxy answers 503)");

    public static Command Start(CommonOptions common, CliEnvironment env) => Simple(common, env, "start", "Start the app's instances again from its current release");

    private static Command Simple(CommonOptions common, CliEnvironment env, string action, string description)
    {
        var command = new Command(action, description);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var config = RollingConfig(common.ConfigFiles(parse));
            using var client = new AgentClient(AgentHome.FromEnvironment());
            if (!await client.IsRunningAsync(ct)) throw new DeployException("the agent is not running; `cutover deploy` starts it, or run `cutover agent`");
            var error = action == "stop" ? await client.StopAppAsync(config.App, ct) : await client.StartAppAsync(config.App, ct);
            if (error is not null) throw new DeployException(error);
            env.Out.WriteLine($"{action}: {config.App}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The instance table for `cutover status` of a rolling app; the agent's view, live.</summary>
    public static void RenderInstances(CliEnvironment env, AppView? app)
    {
        if (app is null)
        {
            env.Out.WriteLine("instances: the agent is not running this app");
            return;
        }
        // A pipe gets whole rows (as the fleet tables): with the process column an 80-column default would wrap ids.
        if (!env.Interactive) env.Console.Profile.Width = 400;
        var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None)
            .AddColumns("instance", "process", "release", "runs as", "address", "state", "uptime", "memory", "restarts");
        foreach (var i in app.Instances)
        {
            var uptime = i.UptimeSeconds is { } seconds ? $"{seconds:0}s" : "-";
            var state = i.State + (i.Problem is not null && i.State != "ready" ? $" ({i.Problem})" : "");
            var runsAs = i.RunsAs ?? i.Pid?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-";
            var address = i.Address ?? i.Port?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-";
            table.AddRow(Markup.Escape(i.Id), Markup.Escape(i.Process), Markup.Escape(i.Release ?? "-"), Markup.Escape(runsAs), Markup.Escape(address), Markup.Escape(state), uptime,
                $"{i.MemoryBytes / (1024.0 * 1024):0.0} MiB", i.Restarts.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        env.Out.WriteLine($"proxy {app.Proxy}, live release {app.Release}");
        if (app.Counts is { Count: > 0 } counts)
            env.Out.WriteLine("processes: " + string.Join(", ", counts.Select(c => $"{c.Process} {c.Instances}" + (c.Scaled ? $" (scaled; the config says {c.Configured})" : ""))));
        if (app.ProxyCounters is { } counters)
            env.Out.WriteLine($"proxy answers: {counters.Served} forwarded, {counters.Failed} failed (502/503/504), {counters.BodyTooLarge} body too large (413), {counters.HeadersTooLarge} headers too large (431), {counters.TimedOut} timed out (504)");
        if (app.Certificate is { } certificate)
        {
            var names = string.Join(", ", certificate.Names);
            env.Out.WriteLine(certificate.NotAfter is { } notAfter
                ? $"certificate {names}: valid until {notAfter:yyyy-MM-dd HH:mm:ss}Z, renewal from {certificate.RenewAt:yyyy-MM-dd HH:mm:ss}Z"
                : $"certificate {names}: none yet");
            if (certificate.LastError is { } error)
                env.Out.WriteLine($"certificate renewal failed {certificate.ConsecutiveFailures} time(s), last at {certificate.LastFailureAt:yyyy-MM-dd HH:mm:ss}Z, next attempt {certificate.NextAttemptAt:yyyy-MM-dd HH:mm:ss}Z: {error}");
        }
        if (app.Traffic is { Maintenance: true })
            env.Out.WriteLine("maintenance: on (every request gets 503 with the page; `cutover maintenance off` ends it)");
        if (app.Traffic is { PausedUntil: { } until } traffic && until > DateTimeOffset.UtcNow)
            env.Out.WriteLine($"paused: new requests held until `cutover resume` or {until:HH:mm:ss}Z, {traffic.Held} held now");
        if (app.Previous is { } previous)
            env.Out.WriteLine($"previous set: release {previous.Release}, {previous.Instances} instances warm out of rotation until {previous.Until:yyyy-MM-dd HH:mm:ss}Z");
        env.Console.Write(table);
    }

    private static CutoverConfig RollingConfig(IReadOnlyList<string> files)
    {
        var config = ConfigLoader.Load(files, resolveEnvironment: false);
        var file = string.Join(" + ", files);
        if (!config.RunsInstances) throw new UsageException($"this command is for strategies rolling and blue-green; {file} uses strategy: {config.Strategy}");
        return config;
    }
}
