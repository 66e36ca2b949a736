using Cutover.Config;
using Cutover.Progress;

namespace Cutover.Fleet;

/// <summary>What one cutover command printed on one host, or why it could not run there.</summary>
public sealed record HostCommandResult(FleetHost Host, int ExitStatus, string Stdout, string? Error)
{
    public bool Ok => Error is null && ExitStatus == 0;

    /// <summary>No deploy ever reached this host, so there is nothing to ask it about.</summary>
    public bool NeverDeployed { get; init; }
}

/// <summary>
/// Runs one cutover command on every host, fleet.parallel at a time, with host keys checked. One host failing
/// never hides the others. Read-only commands (status, releases) run the build and config the host's last
/// deploy left there and change nothing on it; rollback first installs this build and writes the host's config.
/// </summary>
public sealed class FleetCommand(CutoverConfig config, IDeployProgress progress, bool acceptNewHostKeys, HostSelection? selection = null)
{
    private readonly FleetConfig _fleet = config.Fleet ?? throw new ArgumentException("the config has no hosts", nameof(config));
    private readonly IReadOnlyList<FleetHost> _hosts = (selection ?? HostSelection.All(config.Fleet)).Hosts;
    private readonly Lock _gate = new();

    /// <summary>Runs a read-only command with what the last deploy installed; a host never deployed to says so.</summary>
    /// <param name="arguments">The cutover arguments after the binary, e.g. ["status", "--json"]; -c is added.</param>
    public Task<IReadOnlyList<HostCommandResult>> QueryAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken) =>
        ForEachHostAsync(async (connection, ct) =>
        {
            if (await DeployedStateAsync(connection, ct) is not { } state)
                return new HostCommandResult(connection.Host, -1, "", $"nothing deployed yet: no deploy of {config.App} to {connection.Host.Root} has reached this host") { NeverDeployed = true };
            return await RunAsync(connection, state.Binary, state.Config, arguments, ct);
        }, cancellationToken);

    /// <summary>
    /// <see cref="QueryAsync"/>, with each host's clock read first (`date +%s.%N`) into <paramref name="clockOffsets"/>:
    /// the host's time minus this machine's at the middle of the round trip (for `cutover doctor`).
    /// </summary>
    public Task<IReadOnlyList<HostCommandResult>> QueryWithClockAsync(IReadOnlyList<string> arguments, System.Collections.Concurrent.ConcurrentDictionary<string, TimeSpan> clockOffsets,
        CancellationToken cancellationToken) =>
        ForEachHostAsync(async (connection, ct) =>
        {
            var before = DateTimeOffset.UtcNow;
            var date = await connection.RunAsync("date +%s.%N", ct);
            var after = DateTimeOffset.UtcNow;
            if (date.ExitStatus == 0 && decimal.TryParse(date.Stdout.Trim(), System.Globalization.NumberStyles.Number, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
                clockOffsets[connection.Host.Name] = DateTimeOffset.UnixEpoch.AddTicks((long)(seconds * TimeSpan.TicksPerSecond)) - (before + (after - before) / 2);
            if (await DeployedStateAsync(connection, ct) is not { } state)
                return new HostCommandResult(connection.Host, -1, "", $"nothing deployed yet: no deploy of {config.App} to {connection.Host.Root} has reached this host") { NeverDeployed = true };
            return await RunAsync(connection, state.Binary, state.Config, arguments, ct);
        }, cancellationToken);

    /// <summary>
    /// Runs a command with what the last deploy installed, streaming each host's output lines to
    /// <paramref name="onLine"/> (host, stderr?, line) as they come; the result holds the exit status and no output.
    /// </summary>
    /// <param name="keepInputOpen">The command's stdin stays open until it ends or is cancelled (logs -f ends on its EOF).</param>
    /// <param name="allAtOnce">Every host at the same time, whatever fleet.parallel says: a follow never ends by itself,
    /// so hosts waiting for a free slot would never be read.</param>
    public Task<IReadOnlyList<HostCommandResult>> StreamAsync(IReadOnlyList<string> arguments, Action<FleetHost, bool, string> onLine, bool keepInputOpen,
        CancellationToken cancellationToken, bool allAtOnce = false) =>
        ForEachHostAsync(async (connection, ct) =>
        {
            if (await DeployedStateAsync(connection, ct) is not { } state)
                return new HostCommandResult(connection.Host, -1, "", $"nothing deployed yet: no deploy of {config.App} to {connection.Host.Root} has reached this host") { NeverDeployed = true };
            var status = await connection.StreamAsync(CommandLine(state.Binary, state.Config, arguments), (stderr, line) => onLine(connection.Host, stderr, line), keepInputOpen, ct);
            return new HostCommandResult(connection.Host, status, "", null);
        }, cancellationToken, allAtOnce ? _hosts.Count : null);

    /// <summary>
    /// The shell command line that runs <paramref name="arguments"/> on the one selected host with what its last deploy
    /// installed (for `exec -it`, which hands it to ssh -t); null when nothing was deployed there.
    /// </summary>
    public async Task<string> DeployedCommandLineAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var lines = await ForEachHostAsync(async (connection, ct) =>
            await DeployedStateAsync(connection, ct) is { } state
                ? new HostCommandResult(connection.Host, 0, CommandLine(state.Binary, state.Config, arguments), null)
                : new HostCommandResult(connection.Host, -1, "", $"nothing deployed yet: no deploy of {config.App} to {connection.Host.Root} has reached this host") { NeverDeployed = true },
            cancellationToken);
        var only = lines.Single();
        if (only.Error is not null) throw new HostException(only.Host, only.Error);
        return only.Stdout;
    }

    /// <summary>
    /// The build link and config the last deploy of this app and root left on the host; on a host deployed before
    /// roots were part of the key, the app's old directory, but only when its config names this very root.
    /// </summary>
    private async Task<(string Binary, string Config)?> DeployedStateAsync(HostConnection connection, CancellationToken ct)
    {
        foreach (var dir in new[] { HostAppState.Dir(connection, config.App), HostAppState.LegacyDir(connection, config.App) })
        {
            var (bin, file) = ($"{dir}/cutover", $"{dir}/cutover.yml");
            var found = await connection.RunAsync($"test -x {HostConnection.Quote(bin)} && cat {HostConnection.Quote(file)}", ct);
            if (found.ExitStatus != 0) continue;
            if (dir == HostAppState.LegacyDir(connection, config.App) && RootOf(found.Stdout) != connection.Host.Root) continue;
            return (bin, file);
        }
        return null;
    }

    /// <summary>The root a host config names (null when it names none or cannot be read).</summary>
    private static string? RootOf(string yaml)
    {
        try
        {
            var stream = new YamlDotNet.RepresentationModel.YamlStream();
            stream.Load(new StringReader(yaml));
            return stream.Documents.Count > 0
                   && stream.Documents[0].RootNode is YamlDotNet.RepresentationModel.YamlMappingNode map
                   && map.Children.TryGetValue(new YamlDotNet.RepresentationModel.YamlScalarNode("root"), out var root)
                ? (root as YamlDotNet.RepresentationModel.YamlScalarNode)?.Value
                : null;
        }
        catch (YamlDotNet.Core.YamlException)
        {
            return null;
        }
    }

    /// <summary>Installs <paramref name="build"/> where missing, writes the host's config, then runs the command.</summary>
    public Task<IReadOnlyList<HostCommandResult>> RunAsync(IReadOnlyList<string> arguments, SelfContainedBuild build, CancellationToken cancellationToken)
    {
        var installer = new RemoteInstaller(build);
        return ForEachHostAsync(async (connection, ct) =>
        {
            var (bin, _) = await installer.EnsureAsync(connection, ct);
            var remoteConfig = await RemoteConfig.WriteAsync(connection, config, ct);
            await installer.LinkForAppAsync(connection, config.App, ct);
            // Commands that move instances (rollback) run only what this host's roles name.
            return await RunAsync(connection, bin, remoteConfig, [.. arguments, "--host-roles", string.Join(',', connection.Host.Roles)], ct);
        }, cancellationToken);
    }

    private static async Task<HostCommandResult> RunAsync(HostConnection connection, string bin, string remoteConfig, IReadOnlyList<string> arguments, CancellationToken ct)
    {
        var result = await connection.RunAsync(CommandLine(bin, remoteConfig, arguments), ct);
        return new HostCommandResult(connection.Host, result.ExitStatus, result.Stdout,
            result.ExitStatus == 0 ? null : HostConnection.FirstLines(result.Stderr.Length > 0 ? result.Stderr : result.Stdout));
    }

    /// <summary>-c goes before a `--`, so that what follows it (exec's command) is the command's alone.</summary>
    private static string CommandLine(string bin, string remoteConfig, IReadOnlyList<string> arguments)
    {
        var dashes = arguments.ToList().IndexOf("--");
        var before = dashes < 0 ? arguments : arguments.Take(dashes);
        var after = dashes < 0 ? [] : arguments.Skip(dashes);
        return string.Join(' ', new[] { bin }.Concat(before).Concat(["-c", remoteConfig]).Concat(after).Select(HostConnection.Quote));
    }

    private async Task<IReadOnlyList<HostCommandResult>> ForEachHostAsync(Func<HostConnection, CancellationToken, Task<HostCommandResult>> run, CancellationToken cancellationToken,
        int? parallel = null)
    {
        var knownHosts = new KnownHosts(_fleet.Ssh.KnownHosts);
        var results = new HostCommandResult[_hosts.Count];
        await Parallel.ForEachAsync(_hosts.Select((h, i) => (h, i)), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, parallel ?? _fleet.Options.Parallel), CancellationToken = cancellationToken },
            async (item, ct) =>
            {
                var (host, index) = item;
                var hostProgress = new HostProgress(host.Name, progress, _gate);
                try
                {
                    using var connection = await HostConnection.ConnectAsync(host, _fleet.Ssh, knownHosts, acceptNewHostKeys, hostProgress.Info, ct);
                    results[index] = await run(connection, ct);
                }
                catch (HostException e)
                {
                    results[index] = new HostCommandResult(host, -1, "", e.Reason);
                }
            });
        return results;
    }
}
