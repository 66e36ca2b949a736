using System.CommandLine;
using Cutover.Cli.Output;
using Cutover.Progress;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Releases;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Cutover.Cli.Commands;

public static class DeployCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var source = new Argument<string?>("source") { Description = "A directory or a .tar.gz to deploy as a new release (not needed with --image)", Arity = ArgumentArity.ZeroOrOne };
        var image = new Option<string?>("--image") { Description = "The container image to deploy (runtime: docker, strategy: swarm), instead of the one in the config" };
        var revision = new Option<string?>("--revision") { Description = "The revision to record (default: the source's git commit)" };
        var probe = new Option<string?>("--probe") { Description = "Probe this URL at a fixed rate for the length of the deploy and add the result to the report" };
        var probeRate = new Option<double>("--probe-rate") { Description = "Requests per second for --probe", DefaultValueFactory = _ => 100 };
        var report = new Option<string?>("--report") { Description = "With --probe: write the deploy report to this .html file (charts of the probe's requests/s, failures and latency per 100 ms, the phases and batches on the time axis)" };
        var allowEmpty = new Option<bool>("--allow-empty") { Description = "Deploy an artifact that holds no files (an empty directory or archive); refused otherwise" };
        var adoptRoot = new Option<bool>("--adopt-root") { Description = "Deploy into a root that is not empty and was not created by Cutover (no .cutover/); refused otherwise" };
        var envOnly = new Option<bool>("--env-only") { Description = "Deploy the live release's files (or image) again with the environment as env/env_file resolve now, through the strategy's usual rollout" };
        var upgradeAgent = new Option<bool>("--upgrade-agent") { Description = "When the running agent is another version than this cutover, upgrade it first (cutover agent upgrade: no request fails)" };
        var command = new Command("deploy", "Stage a new release and switch to it atomically") { source, revision, image, common.Json, common.LockWait, probe, probeRate, report, common.AcceptNewHostKeys, allowEmpty, adoptRoot, envOnly, upgradeAgent, common.Hosts, common.Roles };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            var secrets = new SecretsToHide();
            return CommandRunner.RunAsync(env, json, async () =>
            {
                using var undoFinishes = env.ProtectUndo();
                var config = common.LoadConfig(parse, resolveEnvironment: true);
                secrets.Redactor = ReleaseEnvironmentFile.RedactorFor(config.Root, config.Environment);
                var rendering = env.Progress(json);
                var reportPath = parse.GetValue(report);
                if (reportPath is not null && parse.GetValue(probe) is null)
                    throw new UsageException("--report charts the probe's requests during the deploy; give --probe URL with it");
                // Checked before anything is deployed: a report that cannot be written is known now, not after the switch.
                if (reportPath is not null) Cutover.Report.HtmlReportWriter.CheckWritable(reportPath);
                // The report times phases and batches as they arrive, on the probe's clock; it sees only redacted text.
                var timeline = reportPath is null ? null : new Cutover.Report.TimelineRecorder(rendering);
                // Everything the deploy reports goes through the redactor; the renderer itself is kept for the final result.
                var progress = RedactingProgress.Wrap(timeline ?? rendering, secrets.Redactor);
                var onlyEnv = parse.GetValue(envOnly);
                if (onlyEnv && (parse.GetValue(source) is not null || parse.GetValue(image) is not null))
                    throw new UsageException("--env-only deploys the live release again with the new environment; give no source and no --image");
                if (onlyEnv && parse.GetValue(allowEmpty) && config.Fleet is not null)
                    throw new UsageException("--allow-empty is for a new artifact; --env-only with hosts: redeploys each host's live files as they are");
                if (common.Selection(parse, config) is { } selection)
                {
                    if (parse.GetValue(probe) is not null) throw new UsageException("--probe is for deploys on this machine; with hosts, probe each host's URL yourself");
                    if (parse.GetValue(adoptRoot))
                        throw new UsageException("--adopt-root is for deploys on this machine; a fleet deploy does not take it yet (deploy to an empty root on each host)");
                    if (parse.GetValue(upgradeAgent))
                        throw new UsageException("--upgrade-agent is for deploys on this machine; a fleet deploy upgrades each host's agent to the build it installs there by itself");
                    if (!onlyEnv && parse.GetValue(source) is null)
                        throw new UsageException("give the directory or .tar.gz to deploy to the hosts: cutover deploy ./dist (or --env-only)");
                    return await FleetCommands.DeployAsync(env, json, rendering, config,
                        new Cutover.Fleet.FleetDeployRequest(parse.GetValue(source) ?? "", parse.GetValue(revision), CommandLine(), parse.GetValue(common.AcceptNewHostKeys),
                            CommonOptions.ParseLockWait(parse.GetValue(common.LockWait)!)) { AllowEmpty = parse.GetValue(allowEmpty), EnvOnly = onlyEnv }, selection, ct);
                }
                using var http = new HttpClient();
                using var logging = env.Logging(parse.GetValue(common.Verbose));
                using var agent = new Cutover.Agent.AgentClient(Cutover.Agent.AgentHome.FromEnvironment());
                if (parse.GetValue(upgradeAgent) && !config.RunsInstances)
                    throw new UsageException($"--upgrade-agent is for strategies rolling and blue-green; this config uses strategy: {config.Strategy}");
                if (config.RunsInstances && await agent.IsRunningAsync(ct) && await agent.InfoAsync(ct) is { } running && running.Version != CutoverVersion.Current)
                {
                    if (parse.GetValue(upgradeAgent))
                        await AgentCommands.UpgradeAgentAsync(progress.Info, agent, AgentCommands.SelfCommand(), ct);
                    else
                        progress.Warning($"the agent runs cutover {running.Version ?? "(an older version)"}, this cutover is {CutoverVersion.Current}; " +
                                         "`cutover agent upgrade` (or `cutover deploy --upgrade-agent`) moves it to this build without failing a request");
                }
                var deployer = new DeployPipeline(config, progress, http, ReleaseActivations.For(config, progress, AgentCommands.ActivatorFor(config, agent)), logging.CreateLogger<DeployPipeline>());
                var imageRef = parse.GetValue(image);
                var deploysImage = config.Settings.DeploysImage;
                if (imageRef is not null && !deploysImage)
                    throw new UsageException("--image is for runtime: docker and strategy: swarm; this config deploys files");
                if (parse.GetValue(allowEmpty) && deploysImage)
                    throw new UsageException("--allow-empty is for directories and archives; this config deploys an image");
                var sourceArg = parse.GetValue(source);
                var again = onlyEnv ? EnvOnlyRelease.Open(config) : null;
                if (again is not null) sourceArg = again.Path;
                if (sourceArg is null && !deploysImage)
                    throw new UsageException("give the directory or .tar.gz to deploy: cutover deploy ./dist");
                var request = new DeployRequest(sourceArg ?? "", parse.GetValue(revision) ?? again?.Revision,
                    CommonOptions.ParseLockWait(parse.GetValue(common.LockWait)!), CommandLine())
                    { Image = imageRef, AllowEmpty = parse.GetValue(allowEmpty), AdoptRoot = parse.GetValue(adoptRoot), Release = again?.Release };
                Task<Cutover.Probe.ProbeReport>? probing = null;
                using var stopProbe = new CancellationTokenSource();
                Uri? probeTarget = null;
                if (parse.GetValue(probe) is { } probeUrl)
                {
                    if (!Uri.TryCreate(probeUrl, UriKind.Absolute, out var target) || target.Scheme != "http")
                        throw new UsageException($"--probe: '{probeUrl}' is not an http:// URL");
                    if (parse.GetValue(probeRate) <= 0) throw new UsageException("--probe-rate must be above 0");
                    probeTarget = target;
                    probing = Cutover.Probe.LoadProbe.RunAsync(new Cutover.Probe.ProbeOptions
                    {
                        Url = target, Rate = parse.GetValue(probeRate), Duration = TimeSpan.FromHours(1),
                    }, stopProbe.Token);
                }
                var result = await deployer.DeployAsync(request, ct);
                result = result with { Error = secrets.Redactor.RedactOrNull(result.Error) };
                Cutover.Probe.ProbeReport? probed = null;
                if (probing is not null)
                {
                    stopProbe.Cancel();
                    probed = await probing;
                    if (reportPath is not null)
                        Cutover.Report.HtmlReportWriter.Write(reportPath, Cutover.Report.DeployReport.ForDeploy(config.App, config.Strategy.Name, result,
                            probeTarget!, parse.GetValue(probeRate), probed, Cutover.Report.DeployTimeline.From(timeline!.Events, probed.StartTimestamp), DateTimeOffset.UtcNow));
                }
                // Before the result line: with --json that stays the last line, and a notification's warning comes before it.
                await Cutover.Notify.WebhookNotifier.NotifyAsync(config.Notify, Cutover.Notify.NotifyPayload.ForDeploy(config.App, result.Outcome, result.Release, result.Revision,
                    Environment.UserName, result.Error, result.PhaseSeconds.Values.Sum()), progress.Warning);
                Render(env, json, rendering, config, result, probed);
                if (probed is { Failed: > 0 })
                {
                    if (!json) env.Error.WriteLine($"error: the probe counted {probed.Failed} failed requests during the deploy");
                    return ExitCodes.Failed;
                }
                return result.Succeeded ? ExitCodes.Ok : result.Outcome == DeployOutcome.Cancelled ? ExitCodes.Cancelled : ExitCodes.Failed;
            }, secrets);
        });
        return command;
    }

    internal static string CommandLine() => "cutover " + string.Join(' ', Environment.GetCommandLineArgs().Skip(1));

    private static void Render(CliEnvironment env, bool json, Progress.IDeployProgress progress, CutoverConfig config, DeployResult result, Cutover.Probe.ProbeReport? probed)
    {
        var total = result.PhaseSeconds.Values.Sum();
        if (json)
        {
            ((JsonProgress)progress).Result(new Output.DeployResultEvent("deploy", config.App, result.Outcome.Word(), result.Release, result.Revision, result.Previous,
                result.Error, result.Pruned, result.PhaseSeconds, probed is null ? null : Output.ProbeSummary.Of(probed)));
            return;
        }
        if (probed is not null)
            foreach (var line in ProbeCommand.Lines(probed)) env.Out.WriteLine(line);
        // A swarm deploy that failed once the service update began (it has a swarm phase) says where the service is;
        // before it, and when cancelled, the words of the other strategies are true as they stand.
        var message = config.Strategy == Strategy.Swarm && result.Outcome is DeployOutcome.Failed or DeployOutcome.RolledBack && result.PhaseSeconds.ContainsKey("swarm")
            ? $"deploy of release {result.Release} failed; {(result.Outcome == DeployOutcome.RolledBack ? $"the service is back on {result.Previous ?? "its previous spec"}" : "the service may not run the release Cutover last recorded (see `cutover status`)")}: {result.Error}"
            : result.Outcome switch
        {
            DeployOutcome.Success => $"deployed {config.App} release {result.Release} in {total:0.00}s",
            DeployOutcome.Failed => $"deploy failed before the switch; {(result.Previous is null ? "nothing was live" : $"{result.Previous} is still live")}: {result.Error}",
            DeployOutcome.Paused => $"deploy of release {result.Release} paused: {result.Error}",
            DeployOutcome.Cancelled => $"deploy of release {result.Release} cancelled: {result.Error}{(result.Previous is null ? "" : $"; {result.Previous} is live")}",
            _ => $"deploy failed after the release was staged: {result.Error}",
        };
        if (env.Interactive)
            env.Console.MarkupLine(result.Succeeded ? $"[green bold]{Markup.Escape(message)}[/]" : $"[red bold]{Markup.Escape(message)}[/]");
        else if (result.Succeeded)
            env.Out.WriteLine(message);
        else
            env.Error.WriteLine($"error: {message}");
    }
}
