using System.CommandLine;
using Cutover.Agent;
using Cutover.Config;
using Cutover.Proxy;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover maintenance on|off`, `cutover pause`, `cutover resume`: what the agent's proxy answers for an app while its
/// instances keep running (maintenance: 503 with a page; pause: requests held until resume or the timeout).
/// </summary>
public static class TrafficCommands
{
    public static Command Maintenance(CommonOptions common, CliEnvironment env)
    {
        var message = new Option<string?>("--message") { Arity = ArgumentArity.ExactlyOne, Description = "The text every request gets with its 503" };
        var page = new Option<string?>("--page") { Arity = ArgumentArity.ExactlyOne, Description = $"A file (HTML, or text by its extension) every request gets with its 503, read here, at most {MaintenancePage.MaxBytes / 1024} KiB" };
        var on = new Command("on", "Answer every request of the app with 503, Retry-After and a page; the instances keep running") { message, page };
        on.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var request = MaintenanceRequestOf(parse.GetValue(message), parse.GetValue(page));
            var config = AgentConfig(common.ConfigFiles(parse), "maintenance on");
            using var client = await ClientAsync(ct);
            await Refusals(() => client.SetMaintenanceAsync(config.App, request, ct));
            env.Out.WriteLine($"maintenance on: {config.App} answers 503 to every request; `cutover maintenance off` ends it");
            return ExitCodes.Ok;
        }));
        var off = new Command("off", "Forward the app's requests to its instances again");
        off.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var config = AgentConfig(common.ConfigFiles(parse), "maintenance off");
            using var client = await ClientAsync(ct);
            await Refusals(() => client.SetMaintenanceAsync(config.App, new MaintenanceRequest(false), ct));
            env.Out.WriteLine($"maintenance off: {config.App} serves again");
            return ExitCodes.Ok;
        }));
        return new Command("maintenance", "Put the app into maintenance (503 with a page) or take it out") { on, off };
    }

    public static Command Pause(CommonOptions common, CliEnvironment env)
    {
        var timeout = new Option<string>("--timeout") { Description = $"When held requests get 503 and the pause ends if `cutover resume` has not come (at most {Duration.Format(TrafficGate.MaxPause)})", DefaultValueFactory = _ => "10s" };
        var command = new Command("pause", "Hold the app's new requests (not failed) until `cutover resume` or the timeout; requests in flight finish") { timeout };
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var text = parse.GetValue(timeout)!;
            if (!Duration.TryParse(text, out var limit, out var error)) throw new UsageException($"--timeout: {error}");
            if (limit <= TimeSpan.Zero || limit > TrafficGate.MaxPause)
                throw new UsageException($"--timeout must be above 0 and at most {Duration.Format(TrafficGate.MaxPause)}, got {text}");
            var config = AgentConfig(common.ConfigFiles(parse), "pause");
            using var client = await ClientAsync(ct);
            var paused = await Refusals(() => client.PauseAsync(config.App, limit, ct));
            env.Out.WriteLine($"paused: {config.App} holds new requests until `cutover resume`, or until {paused.Until:HH:mm:ss}Z (then 503)");
            await Cutover.Notify.WebhookNotifier.NotifyAsync(config.Notify, Cutover.Notify.NotifyPayload.ForPause(config.App, Environment.UserName, paused.Until),
                warning => env.Error.WriteLine($"warning: {warning}"));
            return ExitCodes.Ok;
        }));
        return command;
    }

    public static Command Resume(CommonOptions common, CliEnvironment env)
    {
        var command = new Command("resume", "Release the app's held requests to its instances");
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var config = AgentConfig(common.ConfigFiles(parse), "resume");
            using var client = await ClientAsync(ct);
            var resumed = await Refusals(() => client.ResumeAsync(config.App, ct));
            env.Out.WriteLine(resumed.WasPaused ? $"resumed: {config.App}, {resumed.Released} held requests released" : $"resumed: {config.App} was not paused");
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>--message or --page (not both), read here: the agent gets the content, not a path on its host.</summary>
    private static MaintenanceRequest MaintenanceRequestOf(string? message, string? page)
    {
        if (message is not null && page is not null) throw new UsageException("--message and --page are alternatives; give one");
        if (message is not null)
        {
            if (message.Length == 0) throw new UsageException("--message is empty; leave it out for the default page");
            var text = MaintenancePage.FromMessage(message);
            if (System.Text.Encoding.UTF8.GetByteCount(text.Body) > MaintenancePage.MaxBytes) throw new UsageException($"--message is larger than {MaintenancePage.MaxBytes} bytes");
            return new MaintenanceRequest(true, text.Body, text.ContentType);
        }
        if (page is null) return new MaintenanceRequest(true);
        var file = new FileInfo(page);
        if (!file.Exists) throw new UsageException($"--page {page}: no such file");
        if (file.Length > MaintenancePage.MaxBytes) throw new UsageException($"--page {page} is {file.Length} bytes; a maintenance page may be at most {MaintenancePage.MaxBytes} bytes");
        string body;
        try
        {
            body = File.ReadAllText(file.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--page {page}: {e.Message}");
        }
        var html = file.Extension.ToLowerInvariant() is ".html" or ".htm";
        return new MaintenanceRequest(true, body, html ? "text/html; charset=utf-8" : "text/plain; charset=utf-8");
    }

    private static CutoverConfig AgentConfig(IReadOnlyList<string> files, string command)
    {
        var config = ConfigLoader.Load(files, resolveEnvironment: false);
        var file = string.Join(" + ", files);
        if (!config.RunsInstances) throw new UsageException($"`cutover {command}` acts on the agent's proxy (strategies rolling and blue-green); {file} uses strategy: {config.Strategy}");
        if (config.Settings is BlueGreenSettings { BlueGreen.Router: "nginx" })
            throw new UsageException($"`cutover {command}` acts on Cutover's proxy; with router: nginx, {file}'s traffic goes through nginx");
        if (Cutover.BlueGreen.HaproxyRouter.For(config.Settings) is not null)
            throw new UsageException($"`cutover {command}` acts on Cutover's proxy; with router: haproxy, {file}'s traffic goes through HAProxy");
        if (config.Fleet is not null)
            throw new UsageException($"`cutover {command}` acts on this machine's agent; {file} deploys to hosts:, so run it on each host (ssh HOST cutover {command} -c ...)");
        return config;
    }

    private static async Task<AgentClient> ClientAsync(CancellationToken cancellationToken)
    {
        var client = new AgentClient(AgentHome.FromEnvironment());
        if (await client.IsRunningAsync(cancellationToken)) return client;
        client.Dispose();
        throw new DeployException("the agent is not running; `cutover deploy` starts it, or run `cutover agent`");
    }

    /// <summary>The agent's 400 is bad input (exit 2); anything else it refuses is the environment's (exit 1).</summary>
    private static async Task<T> Refusals<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (AgentRefusedException e) when (e.Status == 400)
        {
            throw new UsageException(e.Message);
        }
    }
}
