using System.CommandLine;
using System.Text.Json;
using Cutover.Agent;
using Cutover.Cli.Output;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Fleet;
using Cutover.Supervisor;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover logs`: the app's instance logs. On this machine, from the agent's log directory; with hosts, the same
/// command on every host selected (over SSH, as JSON lines), merged in time order and prefixed with the host.
/// </summary>
public static class LogsCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var follow = new Option<bool>("--follow", "-f") { Description = "Keep printing new lines, across rotations and restarts (every host at once)" };
        var instance = new Option<int?>("--instance") { Description = "Only this instance (its number, from `cutover status`)" };
        var process = new Option<string?>("--process") { Description = "Only this process type's instances (web)" };
        var lines = new Option<int?>("--lines", "-n") { Description = "How many recent lines to print first, per host (default 100; with --since, all since then)" };
        var since = new Option<string?>("--since") { Description = "Only lines from this long ago on (e.g. 10m, 2h)" };
        var grep = new Option<string?>("--grep") { Description = "Only lines containing this text (case-sensitive)" };
        // The fleet's side: JSON lines, a caught-up mark after the recent lines, and a follow that ends when the
        // deployer's SSH channel (our stdin) closes. People never type it.
        var remote = new Option<bool>("--remote") { Hidden = true };
        var command = new Command("logs", "Print the app's instance logs (with hosts: every host's, merged in time order)")
            { follow, instance, process, lines, since, grep, common.Json, common.AcceptNewHostKeys, common.Hosts, common.Roles, remote };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json) || parse.GetValue(remote);
            // On a host, errors go to stderr as plain lines: the deployer reads stdout as log lines only.
            return CommandRunner.RunAsync(env, parse.GetValue(common.Json), async () =>
            {
                var config = common.LoadConfig(parse);
                if (!config.RunsInstances) throw new UsageException($"logs is for strategies rolling and blue-green; {config.File} uses strategy: {config.Strategy}");
                var processType = parse.GetValue(process);
                // On a host (--remote) the deployer has checked the name against the whole config: a host's own config may
                // leave a type out (a singleton placed elsewhere), and then it simply has no lines of it.
                if (processType is not null && !parse.GetValue(remote) && !ProcessTypes(config).Contains(processType, StringComparer.Ordinal))
                    throw new UsageException($"--process: no process type '{processType}'; this app's are {string.Join(", ", ProcessTypes(config))}");
                var sinceText = parse.GetValue(since);
                TimeSpan? sinceAgo = null;
                if (sinceText is not null)
                {
                    if (!Duration.TryParse(sinceText, out var ago, out var error)) throw new UsageException($"--since: {error}");
                    sinceAgo = ago;
                }
                if (parse.GetValue(lines) is < 0) throw new UsageException($"--lines must be 0 or more, got {parse.GetValue(lines)}");
                if (parse.GetValue(grep) is "") throw new UsageException("--grep: give the text to look for");
                // With --since the window is the limit; without it, the last 100 lines, as before.
                var count = parse.GetValue(lines) ?? (sinceAgo is null ? 100 : null);

                if (common.Selection(parse, config) is { } selection)
                {
                    var arguments = new List<string> { "logs", "--remote" };
                    if (count is { } n) arguments.AddRange(["-n", n.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                    if (sinceText is not null) arguments.AddRange(["--since", sinceText]);
                    if (parse.GetValue(grep) is { } g) arguments.AddRange(["--grep", g]);
                    if (processType is not null) arguments.AddRange(["--process", processType]);
                    if (parse.GetValue(instance) is { } i) arguments.AddRange(["--instance", i.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                    if (parse.GetValue(follow)) arguments.Add("--follow");
                    return await FleetLogsAsync(env, parse.GetValue(common.Json), config, selection, arguments, parse.GetValue(common.AcceptNewHostKeys), ct);
                }

                var filter = new LogFilter(
                    new InstanceSelection(config.App, processType, parse.GetValue(instance)),
                    sinceAgo is { } window ? DateTimeOffset.UtcNow - window : null,
                    parse.GetValue(grep));
                var tail = new LogTail(AgentHome.FromEnvironment().AppLogs(config.App));
                var recent = tail.RecentLines(count, filter, out var end);
                foreach (var line in recent) Print(env, json, line);
                if (parse.GetValue(remote)) Print(env, new LogLineEvent(null, null, null, null, "", "") { CaughtUp = true });
                if (!parse.GetValue(follow)) return ExitCodes.Ok;
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
                if (parse.GetValue(remote)) _ = StopAtEndOfInputAsync(stop);
                try
                {
                    await foreach (var line in tail.FollowLinesAsync(filter, stop.Token, end)) Print(env, json, line);
                }
                catch (OperationCanceledException)
                {
                }
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    /// <summary>The process types `--process` accepts: web and every one under processes:.</summary>
    private static IReadOnlyList<string> ProcessTypes(CutoverConfig config) =>
        config.SettingsOf<InstanceSettings>().Processes.Select(p => p.Name).Prepend(ProcessConfigReader.Web).ToList();

    private static void Print(CliEnvironment env, bool json, LogLine line)
    {
        if (json) Print(env, new LogLineEvent(null, line.Time, line.Instance, line.Stream, line.Text, line.Raw));
        else env.Out.WriteLine(line.Raw);
    }

    private static void Print(CliEnvironment env, LogLineEvent line)
    {
        env.Out.WriteLine(JsonSerializer.Serialize(line, Cutover.Json.Compact));
        env.Out.Flush();
    }

    /// <summary>On a host: the deployer's Ctrl-C closes the SSH channel, which this process sees as its stdin ending (also `top --stream`).</summary>
    internal static async Task StopAtEndOfInputAsync(CancellationTokenSource stop)
    {
        await using var input = Console.OpenStandardInput();
        var buffer = new byte[256];
        try
        {
            while (await input.ReadAsync(buffer, stop.Token) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
        }
        await stop.CancelAsync();
    }

    /// <summary>
    /// Every selected host's lines: the recent ones merged in time order (each host's come already in order), then,
    /// with -f, new lines from all hosts as they arrive. A host that fails is named on stderr and makes the exit 1;
    /// the others' lines are still printed.
    /// </summary>
    private static async Task<int> FleetLogsAsync(CliEnvironment env, bool json, CutoverConfig config, HostSelection selection, List<string> arguments,
        bool acceptNew, CancellationToken ct)
    {
        var width = selection.Hosts.Max(h => h.Name.Length);
        var gate = new Lock();
        var buffered = new List<(int Order, LogLineEvent Line)>();
        var caughtUp = new HashSet<FleetHost>();
        var live = false;
        var problems = new List<string>();

        void Emit(LogLineEvent line)
        {
            if (json) Print(env, line);
            else env.Out.WriteLine($"{line.Host!.PadRight(width)}  {line.Line}");
        }

        // Once every host's recent lines are in (caught up, or finished), they go out in time order, then live lines.
        void FlushWhenAllCaughtUp()
        {
            if (live || caughtUp.Count < selection.Hosts.Count) return;
            foreach (var (_, line) in buffered.OrderBy(b => b.Line.Time ?? DateTimeOffset.MinValue).ThenBy(b => b.Order)) Emit(line);
            buffered.Clear();
            live = true;
            env.Out.Flush();
        }

        void OnLine(FleetHost host, bool stderr, string text)
        {
            lock (gate)
            {
                if (stderr)
                {
                    problems.Add($"{host.Name}: {text}");
                    return;
                }
                var read = Cutover.Json.TryRead<LogLineEvent>(text, out var problem);
                if (read is null)
                {
                    problems.Add($"{host.Name}: `cutover logs --remote` printed a line Cutover cannot read ({problem}): {Cutover.Json.Quote(text)}");
                    return;
                }
                if (read.CaughtUp is true)
                {
                    caughtUp.Add(host);
                    FlushWhenAllCaughtUp();
                    return;
                }
                var line = read with { Host = host.Name };
                if (live)
                {
                    Emit(line);
                    env.Out.Flush();
                }
                else
                {
                    buffered.Add((buffered.Count, line));
                }
            }
        }

        IReadOnlyList<HostCommandResult> results;
        try
        {
            results = await new FleetCommand(config, new Cutover.Progress.SilentProgress(), acceptNew, selection).StreamAsync(arguments, (host, stderr, text) =>
            {
                OnLine(host, stderr, text);
            }, keepInputOpen: true, ct, allAtOnce: arguments.Contains("--follow"));
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            return ExitCodes.Ok; // Ctrl-C ends a follow: every host's command was closed on the way out
        }
        lock (gate)
        {
            // Hosts that never got to their mark (failed, never deployed) must not hold the others' lines back.
            foreach (var r in results) caughtUp.Add(r.Host);
            FlushWhenAllCaughtUp();
        }
        foreach (var r in results.Where(r => r.NeverDeployed)) env.Error.WriteLine($"{r.Host.Name}: {r.Error}");
        var failed = results.Where(r => !r.NeverDeployed && !r.Ok).ToList();
        foreach (var r in failed)
        {
            var said = problems.Where(p => p.StartsWith(r.Host.Name + ": ", StringComparison.Ordinal)).Select(p => p[(r.Host.Name.Length + 2)..]).ToList();
            env.Error.WriteLine($"error: {r.Host.Name}: {r.Error ?? (said.Count > 0 ? string.Join(" | ", said.TakeLast(3)) : $"`cutover logs` exited {r.ExitStatus}")}");
        }
        return failed.Count == 0 ? ExitCodes.Ok : ExitCodes.Failed;
    }
}
