using System.CommandLine;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Fleet;
using Cutover.Releases;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover exec -- CMD`: a one-off command (a console, a data fix) in the live release with the app's environment.
/// On this machine cutover becomes the command (execve), so terminal, signals and exit status are the command's own;
/// with hosts, the same `cutover exec` runs on each host selected, over SSH.
/// </summary>
public static class ExecCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var commandLine = new Argument<string[]>("command")
        {
            Description = "The command, after --; one word is run by /bin/sh -c (pipes and $VARS work), several are run as they are",
            Arity = ArgumentArity.OneOrMore,
        };
        var primary = new Option<bool>("--primary", "-p") { Description = "With hosts: on the primary host only" };
        // On this machine the command always has cutover's own stdin and terminal (cutover becomes it), so -i and -t
        // change nothing there; over SSH either one asks for a terminal (ssh -t), which is why they come as -it.
        var interactive = new Option<bool>("--interactive", "-i") { Description = "With hosts: stdin and a terminal for the command, through ssh -t (one host only)" };
        var tty = new Option<bool>("--tty", "-t") { Description = "With hosts: a terminal for the command, through ssh -t (one host only); on this machine it always has yours" };
        var command = new Command("exec", "Run a one-off command in the live release with the app's environment; its exit status is cutover's")
            { commandLine, primary, interactive, tty, common.Hosts, common.Roles, common.AcceptNewHostKeys };
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var config = common.LoadConfig(parse);
            if (config.Settings.DeploysImage)
                throw new UsageException($"exec runs in the live release's directory; with {(config.Strategy == Strategy.Swarm ? "strategy: swarm" : "runtime: docker")} a release is an image (use docker exec)");
            var words = parse.GetValue(commandLine)!;
            if (common.Selection(parse, config, parse.GetValue(primary)) is { } selection)
                return await OnHostsAsync(env, config, selection, words, parse.GetValue(interactive) || parse.GetValue(tty), parse.GetValue(common.AcceptNewHostKeys), ct);

            var layout = new RootLayout(config.Root);
            var live = new CurrentLink(layout).Read()
                       ?? throw new DeployException($"nothing deployed yet under {config.Root}: exec runs in the live release (`cutover deploy` first)");
            var environment = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables()) environment[(string)e.Key] = (string?)e.Value ?? "";
            // The app's environment as the live release's instances get it: the release's env file (what its deploy
            // resolved from env, env_file and ${VAR}), then run.env's own entries over it, as ApplyTo folds them.
            var released = ReleaseEnvironmentFile.Read(layout, live)?.Variables ?? new Dictionary<string, string>();
            foreach (var (key, value) in released) environment[key] = value;
            if (config.Settings is InstanceSettings instances)
                foreach (var (key, value) in instances.Run.Env) environment[key] = value;
            environment["CUTOVER_APP"] = config.App;
            environment["CUTOVER_RELEASE_ID"] = live.Value;
            environment["PWD"] = layout.ReleaseDir(live); // a shell's $PWD, as if it had cd'd there
            env.Out.Flush();
            env.Error.Flush();
            // The release directory itself, not `current`: a deploy that switches meanwhile does not move the command.
            Cutover.Platform.ProcessImage.Replace("/bin/sh", ShellArguments(words), environment, layout.ReleaseDir(live));
            return ExitCodes.Failed; // not reached: execve returned only by throwing
        }));
        return command;
    }

    /// <summary>One word: `sh -c WORD`; several: `sh -c 'exec "$@"' sh WORDS`, so they reach the program as given and a missing one is 127.</summary>
    private static IReadOnlyList<string> ShellArguments(string[] words) =>
        words.Length == 1 ? ["/bin/sh", "-c", words[0]] : ["/bin/sh", "-c", "exec \"$@\"", "sh", .. words];

    private static async Task<int> OnHostsAsync(CliEnvironment env, CutoverConfig config, HostSelection selection, string[] words, bool terminal, bool acceptNew,
        CancellationToken ct)
    {
        var arguments = new List<string> { "exec", "--" };
        arguments.AddRange(words);
        if (terminal)
        {
            if (selection.Hosts.Count > 1)
                throw new UsageException($"-it gives one command a terminal; this selects {selection.Hosts.Count} hosts ({string.Join(", ", selection.Hosts.Select(h => h.Name))}): " +
                                         "narrow it with --primary or --hosts NAME");
            var line = await new FleetCommand(config, new Cutover.Progress.SilentProgress(), acceptNew, selection).DeployedCommandLineAsync(arguments, ct);
            var host = selection.Hosts[0];
            var ssh = config.Fleet!.Ssh;
            // ssh -t itself: the terminal, its size, raw mode and Ctrl-C are OpenSSH's business, and the host key was
            // just checked against the same known_hosts by the connection above.
            List<string> argv = ["ssh", "-tt", "-p", host.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-l", host.User,
                "-o", $"UserKnownHostsFile={ssh.KnownHosts}", "-o", "StrictHostKeyChecking=yes", "-o", $"ConnectTimeout={Math.Max(1, (int)ssh.ConnectTimeout.TotalSeconds)}"];
            if (ssh.Key is { } key) argv.AddRange(["-i", key, "-o", "IdentitiesOnly=yes"]);
            argv.AddRange([host.Address, line]);
            var sshPath = FindOnPath("ssh") ?? throw new DeployException("exec -it over SSH needs the OpenSSH client (ssh) on PATH");
            env.Out.Flush();
            var environment = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (System.Collections.DictionaryEntry e in Environment.GetEnvironmentVariables()) environment[(string)e.Key] = (string?)e.Value ?? "";
            Cutover.Platform.ProcessImage.Replace(sshPath, argv, environment, Directory.GetCurrentDirectory());
            return ExitCodes.Failed;
        }

        var prefixed = selection.Hosts.Count > 1;
        var width = selection.Hosts.Max(h => h.Name.Length);
        var gate = new Lock();
        var results = await new FleetCommand(config, new Cutover.Progress.SilentProgress(), acceptNew, selection).StreamAsync(arguments, (host, stderr, text) =>
        {
            lock (gate)
            {
                var writer = stderr ? env.Error : env.Out;
                writer.WriteLine(prefixed ? $"{host.Name.PadRight(width)}  {text}" : text);
                writer.Flush();
            }
        }, keepInputOpen: false, ct);
        foreach (var r in results.Where(r => r.Error is not null)) env.Error.WriteLine($"error: {r.Host.Name}: {r.Error}");
        // In host order, the first that did not succeed decides; a host where it never ran counts as a failure (1).
        var first = results.FirstOrDefault(r => !r.Ok);
        if (first is null) return ExitCodes.Ok;
        var status = first.Error is not null ? ExitCodes.Failed : first.ExitStatus is > 0 and < 256 ? first.ExitStatus : ExitCodes.Failed;
        if (prefixed)
            env.Error.WriteLine($"error: exit {status}, from {first.Host.Name} (the first host, in config order, where the command did not succeed; " +
                                $"{results.Count(r => r.Ok)} of {results.Count} succeeded)");
        return status;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);
}
