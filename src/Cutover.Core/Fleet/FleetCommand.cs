using Cutover.Config;
using Cutover.Progress;

namespace Cutover.Fleet;

/// <summary>What one cutover command printed on one host, or why it could not run there.</summary>
public sealed record HostCommandResult(FleetHost Host, int ExitStatus, string Stdout, string? Error)
{
    public bool Ok => Error is null && ExitStatus == 0;
}

/// <summary>
/// Runs one cutover command on every host (status, releases, rollback): connect with host keys checked, make sure
/// cutover and the host's config are there, run it, fleet.parallel at a time. One host failing never hides the others.
/// </summary>
public sealed class FleetCommand(CutoverConfig config, SelfContainedBuild build, IDeployProgress progress, bool acceptNewHostKeys)
{
    private readonly FleetConfig _fleet = config.Fleet ?? throw new ArgumentException("the config has no hosts", nameof(config));
    private readonly Lock _gate = new();

    /// <param name="arguments">The cutover arguments after the binary, e.g. ["status", "--json"]; -c is added.</param>
    public async Task<IReadOnlyList<HostCommandResult>> RunAsync(IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var knownHosts = new KnownHosts(_fleet.Ssh.KnownHosts);
        var installer = new RemoteInstaller(build);
        var results = new HostCommandResult[_fleet.Hosts.Count];
        await Parallel.ForEachAsync(_fleet.Hosts.Select((h, i) => (h, i)), new ParallelOptions { MaxDegreeOfParallelism = _fleet.Options.Parallel, CancellationToken = cancellationToken },
            async (item, ct) =>
            {
                var (host, index) = item;
                var hostProgress = new HostProgress(host.Name, progress, _gate);
                try
                {
                    using var connection = await HostConnection.ConnectAsync(host, _fleet.Ssh, knownHosts, acceptNewHostKeys, hostProgress.Info, ct);
                    var (bin, _) = await installer.EnsureAsync(connection, ct);
                    var remoteConfig = await RemoteConfig.WriteAsync(connection, config, ct);
                    var line = string.Join(' ', new[] { bin }.Concat(arguments).Concat(["-c", remoteConfig]).Select(HostConnection.Quote));
                    var result = await connection.RunAsync(line, ct);
                    results[index] = new HostCommandResult(host, result.ExitStatus, result.Stdout,
                        result.ExitStatus == 0 ? null : HostConnection.FirstLines(result.Stderr.Length > 0 ? result.Stderr : result.Stdout));
                }
                catch (HostException e)
                {
                    results[index] = new HostCommandResult(host, -1, "", e.Reason);
                }
            });
        return results;
    }
}
