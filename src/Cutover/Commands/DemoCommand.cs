using System.CommandLine;
using System.Reflection;
using Cutover.Agent;
using Cutover.Config;
using Cutover.Probe;
using Cutover.Deploy;
using Spectre.Console;

namespace Cutover.Cli.Commands;

/// <summary>
/// Deploys the bundled example app twice into a local root and rolls back: the whole symlink strategy,
/// end to end, with nothing to install. It checks its own result and exits non-zero if anything is off.
/// </summary>
public static class DemoCommand
{
    public static Command Create(CliEnvironment env)
    {
        var dirOption = new Option<string?>("--dir") { Description = "Where to put the demo (default: a new temporary directory)" };
        var command = new Command("demo", "Deploy the bundled example app twice into a local root, then roll back") { dirOption };
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var dir = Path.GetFullPath(parse.GetValue(dirOption) ?? Directory.CreateTempSubdirectory("cutover-demo-").FullName);
            var root = Path.Combine(dir, "root");
            var source = Path.Combine(dir, "app");
            var configFile = Path.Combine(dir, "cutover.yml");
            Directory.CreateDirectory(dir);
            File.WriteAllText(configFile, $"""
                # Written by `cutover demo`; try: cutover status -c {configFile}
                app: hello-php
                root: {root}
                keep_releases: 5
                shared:
                  files: [.env]
                  dirs: [storage]
                hooks:
                  build: ["echo \"built $CUTOVER_RELEASE_ID\" > BUILD_INFO"]
                """);
            var config = ConfigLoader.Load(configFile);
            // An operator creates shared/.env once, by hand; every release links to it.
            Directory.CreateDirectory(Path.Combine(root, "shared"));
            File.WriteAllText(Path.Combine(root, "shared", ".env"), "APP_ENV=demo\n");

            var progress = env.Progress(json: false);
            using var http = new HttpClient();
            var deployer = new DeployPipeline(config, progress, http);
            var command = DeployCommand.CommandLine();

            Step(env, "1. deploy version 1.0.0");
            WriteApp(source, "1.0.0");
            var first = await deployer.DeployAsync(new DeployRequest(source, "v1.0.0", TimeSpan.Zero, command), ct);
            Step(env, "2. deploy version 1.1.0 (one file changed; identical files are shared with 1.0.0)");
            WriteApp(source, "1.1.0");
            var second = await deployer.DeployAsync(new DeployRequest(source, "v1.1.0", TimeSpan.Zero, command), ct);
            Step(env, "3. roll back");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var rollback = await deployer.RollbackAsync(new RollbackRequest(null, TimeSpan.Zero, command), ct);
            var rollbackMs = clock.Elapsed.TotalMilliseconds;

            var live = File.ReadAllText(Path.Combine(root, "current", "VERSION")).Trim();
            var ok = first.Succeeded && second.Succeeded && rollback.Succeeded && rollback.To == first.Release && live == "1.0.0";
            env.Out.WriteLine($"current -> {new FileInfo(Path.Combine(root, "current")).LinkTarget}  (VERSION {live})");
            env.Out.WriteLine($"rollback took {rollbackMs:0.0} ms, lock to recorded history");

            ok &= await RollingDemoAsync(env, dir, http, ct);
            Step(env, ok ? "done" : "demo FAILED");
            env.Out.WriteLine($"look around: ls -la {root}; cutover releases -c {configFile}");
            return ok ? ExitCodes.Ok : ExitCodes.Failed;
        }));
        return command;
    }

    /// <summary>
    /// The rolling strategy: a small web app (this binary's hidden demo-app command) at 2 instances under the
    /// agent, behind Cutover's proxy; version 2 is deployed while a probe keeps sending requests.
    /// </summary>
    private static async Task<bool> RollingDemoAsync(CliEnvironment env, string dir, HttpClient http, CancellationToken ct)
    {
        var home = new AgentHome(Path.Combine(dir, "agent-home"));
        var source = Path.Combine(dir, "web-app");
        var port = Cutover.Platform.LoopbackPort.Free();
        var configFile = Path.Combine(dir, "rolling.yml");
        var command = string.Join(' ', AgentCommands.SelfCommand("demo-app").Select(a => "'" + a.Replace("'", "'\\''") + "'"));
        File.WriteAllText(configFile, $"""
            # Written by `cutover demo`: the rolling strategy under the agent (CUTOVER_HOME={home.Path})
            app: demo-web
            strategy: rolling
            root: {Path.Combine(dir, "rolling-root")}
            run:
              command: "{command.Replace("\\", "\\\\").Replace("\"", "\\\"")}"
              instances: 2
              ready: http
              stop_signal: SIGTERM
            proxy:
              listen: 127.0.0.1:{port}
              drain_timeout: 10s
            health:
              path: /health
            rolling:
              monitor: 1s
            """);
        var config = ConfigLoader.Load(configFile);
        var progress = env.Progress(json: false);
        using var client = new AgentClient(home);
        // The demo's own agent serves its metrics on a free port: the default 9464 is also OpenTelemetry's Prometheus
        // exporter's, and an agent already running here holds it; the demo must not fail for either.
        var metrics = $"127.0.0.1:{Cutover.Platform.LoopbackPort.Free()}";
        var activator = new AgentActivator(client, configFile, config.App, AgentCommands.SelfCommand("agent", "--metrics-listen", metrics));
        var deployer = new DeployPipeline(config, progress, http, new AgentActivation(activator, new Cutover.Releases.RootLayout(config.Root), progress));
        var line = DeployCommand.CommandLine();
        try
        {
            Step(env, $"4. run a web app under the agent: 2 instances behind Cutover's proxy on 127.0.0.1:{port}");
            Directory.CreateDirectory(source);
            File.WriteAllText(Path.Combine(source, "VERSION"), "1\n");
            var first = await deployer.DeployAsync(new DeployRequest(source, "web-v1", TimeSpan.Zero, line), ct);
            if (!first.Succeeded) return false;

            Step(env, "5. deploy version 2 while a probe sends requests through the proxy");
            File.WriteAllText(Path.Combine(source, "VERSION"), "2\n");
            AnswerReport report;
            DeployResult second;
            await using (var probe = new RequestProbe(new Uri($"http://127.0.0.1:{port}/"), connections: 4, maxDuration: TimeSpan.FromMinutes(2)))
            {
                await Task.Delay(500, ct);
                second = await deployer.DeployAsync(new DeployRequest(source, "web-v2", TimeSpan.Zero, line), ct);
                await Task.Delay(500, ct);
                report = await probe.StopAsync();
            }
            Step(env, "deploy report");
            env.Out.WriteLine($"deploy of release {second.Release}: {(second.Succeeded ? "success" : "FAILED: " + second.Error)} in {second.PhaseSeconds.Values.Sum():0.00}s");
            env.Out.WriteLine($"probe: {report.Requests} requests in {report.Elapsed.TotalSeconds:0.0}s ({report.RequestsPerSecond:0}/s), {report.Failed} failed");
            foreach (var (answer, count) in report.ByAnswer.OrderBy(a => a.Key))
                env.Out.WriteLine($"  {count,8}  {answer}");
            return second.Succeeded && report.Failed == 0 && report.ByAnswer.ContainsKey("hello from 2");
        }
        finally
        {
            await client.StopAgentAsync();
        }
    }


    private static void Step(CliEnvironment env, string title)
    {
        if (env.Interactive) env.Console.Write(new Rule($"[bold]{Markup.Escape(title)}[/]").LeftJustified());
        else env.Out.WriteLine($"== {title}");
    }

    /// <summary>Writes the bundled app; only VERSION differs between versions, as in a small real release.</summary>
    private static void WriteApp(string dir, string version)
    {
        var assembly = Assembly.GetExecutingAssembly();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith("Demo/", StringComparison.Ordinal)))
        {
            var path = Path.Combine(dir, name["Demo/".Length..]);
            Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            if (File.Exists(path)) continue; // written once; a release shares identical content with the one before
            using var input = assembly.GetManifestResourceStream(name)!;
            using var output = File.Create(path);
            input.CopyTo(output);
        }
        File.WriteAllText(Path.Combine(dir, "VERSION"), version + "\n");
    }
}
