using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Fleet;
using Cutover.Progress;
using Cutover.Releases;
using Microsoft.Extensions.Logging;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover remote ...`: what a fleet deploy runs on each host through SSH (hidden; people never type it).
/// `session` serves a whole deploy over stdin/stdout; `hashes` lists the content of the live release.
/// </summary>
public static class RemoteCommands
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var remote = new Command("remote", "Used by fleet deploys over SSH") { Hidden = true };
        remote.Subcommands.Add(Session(common, env));
        remote.Subcommands.Add(Hashes(common, env));
        return remote;
    }

    private static Command Session(CommonOptions common, CliEnvironment env)
    {
        var command = new Command("session", "Serve one fleet deploy on this host: JSON lines on stdin and stdout") { common.HostRoles };
        command.SetAction(async (parse, ct) =>
        {
            // The deployer handed this deploy's environment over as the config's env_file (RemoteConfig.HandedEnvFile):
            // read it like a deploy does, then delete it, so only the release's own 0600 env file keeps the values.
            var config = common.LoadConfig(parse, resolveEnvironment: true);
            RemoteConfig.TakeHandedEnvFile(config);
            using var hangup = CancellationTokenSource.CreateLinkedTokenSource(ct);
            // The SSH connection going away may arrive as SIGHUP rather than EOF; either way, abort cleanly.
            using var onHup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => { c.Cancel = true; hangup.Cancel(); });
            using var onTerm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; hangup.Cancel(); });
            var progress = new JsonProgress(env.Out);
            using var http = new HttpClient();
            using var logging = env.Logging(parse.GetValue(common.Verbose));
            using var agent = new Cutover.Agent.AgentClient(Cutover.Agent.AgentHome.FromEnvironment());
            var deployer = new DeployPipeline(config, progress, http, ReleaseActivations.For(config, progress, AgentCommands.ActivatorFor(config, agent, CommonOptions.ParseHostRoles(parse.GetValue(common.HostRoles)))), logging.CreateLogger<DeployPipeline>());
            using var input = new StreamReader(Console.OpenStandardInput());
            // A fleet deploy that installed a new cutover here moves this host's agent onto it by the handover before
            // anything is staged, so the release is activated by the agent of the deploying build and no request fails.
            Func<CancellationToken, Task>? upgradeAgent = config.RunsInstances ? c => AgentCommands.UpgradeIfOtherVersionAsync(progress.Info, agent, c) : null;
            await new RemoteSession(deployer, new RootLayout(config.Root), input, progress, () => EnvOnlyRelease.Open(config), upgradeAgent).RunAsync(hangup.Token);
            return ExitCodes.Ok;
        });
        return command;
    }

    private static Command Hashes(CommonOptions common, CliEnvironment env)
    {
        var command = new Command("hashes", "Print the sha256 of every file in the live release, as a JSON array");
        command.SetAction(parse => CommandRunner.RunAsync(env, true, () =>
        {
            var config = common.LoadConfig(parse);
            var layout = new RootLayout(config.Root);
            var current = new CurrentLink(layout).Read();
            var hashes = current is null ? [] : ReleaseHashes.Of(layout, current).Values.Distinct().ToArray();
            env.Out.WriteLine(JsonSerializer.Serialize(hashes));
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }
}
