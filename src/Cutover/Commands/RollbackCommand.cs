using System.CommandLine;
using Cutover.Cli.Output;
using Cutover.Progress;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Releases;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace Cutover.Cli.Commands;

public static class RollbackCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var release = new Argument<string?>("release") { Description = "The release to switch to (default: the previous good one)", Arity = ArgumentArity.ZeroOrOne };
        // On a fleet host, from the fleet's rollback (people never type them): who rolls back and the fleet's id, for history.
        var deployedBy = new Option<string?>("--deployed-by") { Hidden = true, Description = "The user the fleet's rollback is for" };
        var fleetDeploy = new Option<string?>("--fleet-deploy") { Hidden = true, Description = "The fleet rollback's id" };
        var command = new Command("rollback", "Switch back to the previous good release, atomically")
            { release, common.Json, common.LockWait, common.AcceptNewHostKeys, common.Hosts, common.Roles, common.HostRoles, deployedBy, fleetDeploy };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            var secrets = new SecretsToHide();
            return CommandRunner.RunAsync(env, json, async () =>
            {
                using var undoFinishes = env.ProtectUndo();
                var config = common.LoadConfig(parse);
                // SSH.NET (hosts:) and Docker.DotNet (swarm) are the JIT build's (NativeBuild); nothing has changed yet.
                if (!Cutover.Platform.JitOnly.IsAvailable && (config.Fleet is not null || config.Strategy == Strategy.Swarm)) return NativeBuild.HandOver();
                // Swarm keeps the environment in the service spec, which a rollback rewrites from the config: it needs
                // the env resolved as a deploy does. The agent strategies take the target's own env file instead.
                if (config.Strategy == Strategy.Swarm && config.Environment.Deferred) config = common.LoadConfig(parse, resolveEnvironment: true);
                secrets.Redactor = ReleaseEnvironmentFile.RedactorFor(config.Root, config.Environment);
                var rendering = env.Progress(json);
                var progress = RedactingProgress.Wrap(rendering, secrets.Redactor);
                var selection = common.Selection(parse, config);
                if (selection is not null)
                    return !Cutover.Platform.JitOnly.IsAvailable ? NativeBuild.HandOver() : await FleetCommands.RollbackAsync(env, json, rendering, config, parse.GetValue(release), parse.GetValue(common.LockWait)!, parse.GetValue(common.AcceptNewHostKeys), selection, ct);
                using var http = new HttpClient();
                using var logging = env.Logging(parse.GetValue(common.Verbose));
                using var agent = new Cutover.Agent.AgentClient(Cutover.Agent.AgentHome.FromEnvironment());
                var deployer = new DeployPipeline(config, progress, http, ReleaseActivations.For(config, progress, AgentCommands.ActivatorFor(config, agent, CommonOptions.ParseHostRoles(parse.GetValue(common.HostRoles)))), logging.CreateLogger<DeployPipeline>());
                var request = new RollbackRequest(parse.GetValue(release), CommonOptions.ParseLockWait(parse.GetValue(common.LockWait)!), DeployCommand.CommandLine())
                {
                    Actor = new DeployActor(parse.GetValue(deployedBy) ?? Environment.UserName, parse.GetValue(fleetDeploy)),
                };
                var result = await deployer.RollbackAsync(request, ct);
                result = result with { Error = secrets.Redactor.RedactOrNull(result.Error) };
                // A fleet host's part of a fleet rollback is not notified: the fleet's CLI notifies once for all hosts.
                if (parse.GetValue(fleetDeploy) is null)
                    await Cutover.Notify.WebhookNotifier.NotifyAsync(config.Notify, Cutover.Notify.NotifyPayload.ForRollback(config.App, result.From, result.To, result.Revision,
                        request.Actor.User, result.Error, result.PhaseSeconds.Values.Sum()), progress.Warning);
                if (json && Cutover.Platform.JitOnly.IsAvailable)
                {
                    ((JsonProgress)rendering).Result(new RollbackResultEvent("rollback", config.App, result.Succeeded ? "success" : "hook_failed", result.From, result.To,
                        result.Revision, result.Error, result.PhaseSeconds));
                }
                else
                {
                    var message = $"rolled back {config.App} from {result.From} to {result.To}";
                    if (env.Interactive) env.Console.MarkupLine($"[green bold]{Markup.Escape(message)}[/]");
                    else env.Out.WriteLine(message);
                    if (result.Error is not null) env.Error.WriteLine($"error: {result.Error}");
                }
                return result.Succeeded ? ExitCodes.Ok : ExitCodes.Failed;
            }, secrets);
        });
        return command;
    }
}
