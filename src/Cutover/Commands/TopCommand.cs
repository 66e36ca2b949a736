using System.CommandLine;
using System.Text.Json;
using Cutover.Agent;
using Cutover.Cli.Output;
using Cutover.Cli.Output.Top;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Fleet;
using Cutover.Progress;
using Cutover.Supervisor;
using Spectre.Console;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover top`: the agent's apps refreshed every second (Spectre.Console's live display on the alternate screen), or
/// one plain snapshot when stdout is not a terminal (or with --json). With hosts, every host's agent through one
/// long-running `cutover top --stream --json` per host over SSH, so a refresh starts no process anywhere.
/// </summary>
public static class TopCommand
{
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(1);

    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        // The fleet's side: a frame a second as JSON lines, until the deployer's SSH channel (our stdin) closes.
        var stream = new Option<bool>("--stream") { Hidden = true };
        var command = new Command("top", "A live view of the agent's apps: instances with CPU, memory and restarts, requests/s, errors and p99 " +
                                         "(with hosts: every host's); keys: q quit, arrows select, l logs. Not a terminal: one plain snapshot")
            { common.Json, common.AcceptNewHostKeys, common.Hosts, common.Roles, stream };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            return CommandRunner.RunAsync(env, json, async () =>
            {
                if (parse.GetValue(stream) && !json) throw new UsageException("--stream writes JSON lines; give --json with it");
                var config = OptionalConfig(common, parse);
                var selection = config is not null ? common.Selection(parse, config)
                    : parse.GetValue(common.Hosts) is not null || parse.GetValue(common.Roles) is not null
                        ? throw new UsageException($"{(parse.GetValue(common.Hosts) is not null ? "--hosts" : "--roles")} is for configs with hosts; there is no {ConfigLoader.DefaultFileName} here (give it with -c)")
                        : null;
                // On a host the stream is always this machine's agent: its config (written by the deploy) has no hosts.
                if (selection is not null && !parse.GetValue(stream))
                    return await FleetAsync(env, json, config!, selection, parse.GetValue(common.AcceptNewHostKeys), ct);
                return await LocalAsync(env, json, parse.GetValue(stream), config?.App, ct);
            });
        });
        return command;
    }

    /// <summary>The config when one is given or cutover.yml exists here; the local agent's top needs none (it shows every app).</summary>
    private static CutoverConfig? OptionalConfig(CommonOptions common, ParseResult parse)
    {
        var files = common.ConfigFiles(parse);
        if (parse.GetResult(common.Config) is not { Implicit: false } && !File.Exists(files[0])) return null;
        return common.LoadConfig(parse);
    }

    private static async Task<int> LocalAsync(CliEnvironment env, bool json, bool stream, string? app, CancellationToken ct)
    {
        var home = AgentHome.FromEnvironment();
        using var client = new AgentClient(home);
        // Another user's socket is named for what it is before anything else (it would look like no agent at all).
        await client.IsRunningAsync(ct);
        var sampler = new TopSampler(client, home.Socket);
        if (stream) return await StreamAsync(env, sampler, ct);
        if (json || !env.Interactive)
        {
            var frame = await SnapshotAsync(sampler, ct);
            if (json) env.Out.WriteLine(JsonSerializer.Serialize(frame, Json.Options));
            else TopRenderer.Plain(Plain(env), env.Out, [frame], fleet: false);
            return ExitCodes.Ok;
        }
        return await LiveAsync(env, async token => [await sampler.SampleAsync(token)], fleet: false, app is null ? null : $"/{app}",
            (row, view, token) => FollowLocalLogsAsync(home, row.App.App, view, token), ct);
    }

    /// <summary>Two scrapes a refresh apart, so the snapshot has rates; no agent is an error (exit 1), not an empty table.</summary>
    private static async Task<TopFrame> SnapshotAsync(TopSampler sampler, CancellationToken ct)
    {
        var first = await sampler.SampleAsync(ct);
        if (first.Agent is null) throw new DeployException(first.Error ?? "the agent did not answer");
        await Task.Delay(Refresh, ct);
        var frame = await sampler.SampleAsync(ct);
        return frame.Agent is null ? throw new DeployException(frame.Error ?? "the agent did not answer") : frame;
    }

    /// <summary>A pipe gets whole rows, as the status tables: never wrapped at a default width of 80.</summary>
    private static IAnsiConsole Plain(CliEnvironment env)
    {
        env.Console.Profile.Width = 400;
        return env.Console;
    }

    private static async Task<int> StreamAsync(CliEnvironment env, TopSampler sampler, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        _ = LogsCommand.StopAtEndOfInputAsync(stop);
        try
        {
            while (true)
            {
                var frame = await sampler.SampleAsync(stop.Token);
                env.Out.WriteLine(JsonSerializer.Serialize(frame, Json.Compact));
                env.Out.Flush();
                await Task.Delay(Refresh, stop.Token);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
            return ExitCodes.Ok;
        }
    }

    /// <summary>
    /// The live screen until q or Ctrl-C (both exit 0: quitting top is its normal end). Keys are polled between refreshes,
    /// so a key acts at once and nothing is left blocked in a read when top exits. The alternate screen gives the
    /// terminal back as it was.
    /// </summary>
    private static async Task<int> LiveAsync(CliEnvironment env, Func<CancellationToken, Task<IReadOnlyList<TopFrame>>> sample, bool fleet, string? initialRow,
        Func<TopRow, TopLogView, CancellationToken, Task> followLogs, CancellationToken ct)
    {
        var screen = new TopScreen(initialRow, false);
        TopLogView? logs = null;
        CancellationTokenSource? stopLogs = null;
        Task? following = null;
        var keys = !Console.IsInputRedirected;
        env.Out.Write("\u001b[?1049h\u001b[H");
        env.Out.Flush();
        try
        {
            await env.Console.Live(Text.Empty).AutoClear(true).Overflow(VerticalOverflow.Crop).Cropping(VerticalOverflowCropping.Bottom).StartAsync(async live =>
            {
                var frames = await sample(ct);
                var nextSample = DateTimeOffset.UtcNow + Refresh;
                while (!screen.Done)
                {
                    live.UpdateTarget(TopRenderer.Live(frames, screen, fleet, logs, env.Console.Profile.Height));
                    live.Refresh();
                    // Logs come in between refreshes: redraw them four times a second.
                    var wake = screen.Logs ? Min(nextSample, DateTimeOffset.UtcNow.AddMilliseconds(250)) : nextSample;
                    if (await ReadKeyUntilAsync(keys, wake, ct) is { } key)
                    {
                        var rows = TopRenderer.Rows(frames);
                        var was = screen;
                        screen = TopKeys.Apply(screen, TopKeys.Of(key), rows.Select(r => r.Key).ToList());
                        if (screen.Logs && !was.Logs && rows.FirstOrDefault(r => r.Key == screen.Selected) is { } row)
                        {
                            logs = new TopLogView(fleet ? $"{row.App.App} on {row.Frame.Host}" : row.App.App);
                            stopLogs = CancellationTokenSource.CreateLinkedTokenSource(ct);
                            following = FollowAsync(followLogs, row, logs, stopLogs.Token);
                        }
                        else if (!screen.Logs && was.Logs)
                        {
                            await StopAsync(stopLogs, following);
                            (logs, stopLogs, following) = (null, null, null);
                        }
                    }
                    if (DateTimeOffset.UtcNow >= nextSample)
                    {
                        frames = await sample(ct);
                        nextSample = DateTimeOffset.UtcNow + Refresh;
                    }
                }
            });
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Ctrl-C: the way out of top that works from every screen.
        }
        finally
        {
            await StopAsync(stopLogs, following);
            env.Out.Write("\u001b[?1049l");
            env.Out.Flush();
        }
        return ExitCodes.Ok;
    }

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    /// <summary>A key pressed before <paramref name="until"/>, or null; bounded by the time, polled every 50 ms.</summary>
    private static async Task<ConsoleKeyInfo?> ReadKeyUntilAsync(bool keys, DateTimeOffset until, CancellationToken ct)
    {
        while (DateTimeOffset.UtcNow < until)
        {
            if (keys && Console.KeyAvailable) return Console.ReadKey(intercept: true);
            var left = until - DateTimeOffset.UtcNow;
            await Task.Delay(left < TimeSpan.FromMilliseconds(50) ? left.Duration() : TimeSpan.FromMilliseconds(50), ct);
        }
        return null;
    }

    /// <summary>Runs a log follow, its failure shown as the view's last line rather than ending top.</summary>
    private static async Task FollowAsync(Func<TopRow, TopLogView, CancellationToken, Task> followLogs, TopRow row, TopLogView view, CancellationToken ct)
    {
        try
        {
            await Task.Run(() => followLogs(row, view, ct), ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e) when (e is IOException or DeployException or UnauthorizedAccessException)
        {
            view.Add($"error: {e.Message}");
        }
    }

    private static async Task StopAsync(CancellationTokenSource? stop, Task? following)
    {
        if (stop is null) return;
        await stop.CancelAsync();
        if (following is not null) await following;
        stop.Dispose();
    }

    /// <summary>The app's recent lines and then new ones, from the agent's log directory (what `cutover logs -f` prints).</summary>
    private static async Task FollowLocalLogsAsync(AgentHome home, string app, TopLogView view, CancellationToken ct)
    {
        var tail = new LogTail(home.AppLogs(app));
        var filter = new LogFilter(new InstanceSelection(app));
        var recent = tail.RecentLines(view.Capacity, filter, out var end);
        foreach (var line in recent) view.Add(line.Raw);
        await foreach (var line in tail.FollowLinesAsync(filter, ct, end)) view.Add(line.Raw);
    }

    /// <summary>Every selected host's agent: a snapshot (`top --json` on each), or the live screen over per-host streams.</summary>
    private static async Task<int> FleetAsync(CliEnvironment env, bool json, CutoverConfig config, HostSelection selection, bool acceptNew, CancellationToken ct)
    {
        if (json || !env.Interactive)
        {
            var results = await new FleetCommand(config, new SilentProgress(), acceptNew, selection).QueryAsync(["top", "--json"], ct);
            var frames = results.Select(r => r.Ok
                ? Json.TryRead<TopFrame>(r.Stdout, out var problem) is { } frame
                    ? frame with { Host = r.Host.Name }
                    : Unavailable(r.Host, $"`cutover top --json` answered something Cutover cannot read ({problem}): {Json.Quote(r.Stdout.Trim())}")
                : Unavailable(r.Host, r.Error ?? $"`cutover top --json` exited {r.ExitStatus}")).ToList();
            if (json) env.Out.WriteLine(JsonSerializer.Serialize(frames, Json.Options));
            else TopRenderer.Plain(Plain(env), env.Out, frames, fleet: true);
            // A host never deployed to is an answer (it runs nothing of the app), as in `status`; one that failed is not.
            return results.All(r => r.Ok || r.NeverDeployed) ? ExitCodes.Ok : ExitCodes.Failed;
        }

        var streams = new HostStreams(selection.Hosts);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // One stream per host, each on its own: a host that cannot be reached (or whose stream ends) says so at once,
        // not when every other host's stream has ended too.
        var streaming = Task.WhenAll(selection.Hosts.Select(host => Task.Run(async () =>
        {
            var results = await new FleetCommand(config, new SilentProgress(), acceptNew, new HostSelection([host], true))
                .StreamAsync(["top", "--stream", "--json"], streams.OnLine, keepInputOpen: true, stop.Token, allAtOnce: true);
            foreach (var r in results) streams.Ended(r);
        }, stop.Token)));
        try
        {
            return await LiveAsync(env, _ => Task.FromResult(streams.Frames()), fleet: true, null,
                (row, view, token) => FollowHostLogsAsync(config, selection, acceptNew, row, view, token), ct);
        }
        finally
        {
            // Closing each host's channel ends its `top --stream` (stdin EOF).
            await stop.CancelAsync();
            try
            {
                await streaming;
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private static TopFrame Unavailable(FleetHost host, string error) => new(DateTimeOffset.UtcNow, null, [], false, error, host.Name);

    /// <summary>A host's logs through `logs --remote --follow` on it; only the config's app has its logs reachable there.</summary>
    private static async Task FollowHostLogsAsync(CutoverConfig config, HostSelection selection, bool acceptNew, TopRow row, TopLogView view, CancellationToken ct)
    {
        if (row.App.App != config.App)
        {
            view.Add($"{row.App.App} is not the app of this config ({config.App}): run `cutover logs` with its own config for its logs");
            return;
        }
        var host = selection.Hosts.Single(h => h.Name == row.Frame.Host);
        var results = await new FleetCommand(config, new SilentProgress(), acceptNew, new HostSelection([host], true)).StreamAsync(
            ["logs", "--remote", "-n", "100", "--follow"], (from, stderr, text) =>
            {
                if (stderr) view.Add(text);
                else if (Json.TryRead<LogLineEvent>(text, out _) is { CaughtUp: not true } line) view.Add(line.Line);
            }, keepInputOpen: true, ct, allAtOnce: true);
        foreach (var r in results.Where(r => r.Error is not null)) view.Add($"error: {r.Error}");
    }

    /// <summary>
    /// The newest frame each host's `top --stream` sent, written by the SSH readers and read by the screen. A host
    /// whose frames stop (a dropped connection, a stream that ended) shows since when, never its old numbers as live.
    /// </summary>
    private sealed class HostStreams(IReadOnlyList<FleetHost> hosts)
    {
        private static readonly TimeSpan Stale = TimeSpan.FromSeconds(5);
        private readonly Lock _gate = new();
        private readonly Dictionary<string, (TopFrame? Frame, DateTimeOffset Received, string? Problem)> _latest = new(StringComparer.Ordinal);
        private readonly DateTimeOffset _started = DateTimeOffset.UtcNow;

        public void OnLine(FleetHost host, bool stderr, string text)
        {
            lock (_gate)
            {
                var (frame, received, _) = _latest.GetValueOrDefault(host.Name);
                if (stderr)
                {
                    _latest[host.Name] = (frame, received, text);
                    return;
                }
                _latest[host.Name] = Json.TryRead<TopFrame>(text, out var problem) is { } read
                    ? (read with { Host = host.Name }, DateTimeOffset.UtcNow, null)
                    : (frame, received, $"`cutover top --stream` printed a line Cutover cannot read ({problem}): {Json.Quote(text)}");
            }
        }

        public void Ended(HostCommandResult result)
        {
            lock (_gate)
            {
                var (frame, received, problem) = _latest.GetValueOrDefault(result.Host.Name);
                _latest[result.Host.Name] = (frame, received, result.Error ?? problem ?? $"`cutover top --stream` ended (exit {result.ExitStatus})");
            }
        }

        public IReadOnlyList<TopFrame> Frames()
        {
            lock (_gate)
            {
                var now = DateTimeOffset.UtcNow;
                return hosts.Select(h =>
                {
                    var (frame, received, problem) = _latest.GetValueOrDefault(h.Name);
                    if (frame is null) return Unavailable(h, problem ?? (now - _started < Stale ? "connecting..." : "no answer yet"));
                    var stale = now - received > Stale ? $"no update since {received.UtcDateTime:HH:mm:ss}Z" : null;
                    var error = string.Join("; ", new[] { problem, stale, frame.Error }.Where(e => e is not null));
                    return frame with { Error = error.Length == 0 ? null : error };
                }).ToList();
            }
        }
    }
}
