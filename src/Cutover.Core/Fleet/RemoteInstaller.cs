namespace Cutover.Fleet;

/// <summary>
/// Puts the self-contained build on a host once per version, under ~/.cutover/bin/&lt;version&gt;/cutover.
/// Atomic: uploaded under a temporary name, made executable, then renamed, so a half-sent binary is never run
/// and two deploys installing at once both end with a whole one. Each app also links the build its last deploy
/// or rollback used, so read-only commands (status, releases) run that one and install nothing.
/// </summary>
public sealed class RemoteInstaller(SelfContainedBuild build)
{
    public static string BinDir(HostConnection host) => $"{host.Home}/.cutover/bin";

    /// <summary>A link to the build the last deploy or rollback of this app and root ran (<see cref="HostAppState"/>).</summary>
    public static string AppBinary(HostConnection host, string app) => HostAppState.BinaryLink(host, app);

    public string RemotePath(HostConnection host) => $"{BinDir(host)}/{build.Version}/cutover";

    /// <summary>Returns the path of cutover on the host, and whether it had to be sent.</summary>
    public async Task<(string Path, bool Sent)> EnsureAsync(HostConnection host, CancellationToken cancellationToken)
    {
        var target = RemotePath(host);
        var check = await host.RunAsync($"test -x {HostConnection.Quote(target)}", cancellationToken);
        if (check.ExitStatus == 0) return (target, false);
        var dir = target[..target.LastIndexOf('/')];
        var temp = $"{dir}/.cutover.{Guid.NewGuid():N}.tmp";
        await host.RunCheckedAsync($"mkdir -p {HostConnection.Quote(dir)}", "creating " + dir, cancellationToken);
        await using (var binary = File.OpenRead(build.Path))
            await host.UploadAsync(binary, temp, cancellationToken);
        await host.RunCheckedAsync($"chmod 755 {HostConnection.Quote(temp)} && mv -f {HostConnection.Quote(temp)} {HostConnection.Quote(target)}",
            "installing cutover", cancellationToken);
        return (target, true);
    }

    /// <summary>Points the app's link at this build, atomically (a new link renamed over the old one).</summary>
    public async Task LinkForAppAsync(HostConnection host, string app, CancellationToken cancellationToken)
    {
        var link = AppBinary(host, app);
        var dir = link[..link.LastIndexOf('/')];
        var temp = $"{dir}/.cutover.{Guid.NewGuid():N}.link";
        await host.RunCheckedAsync(
            $"mkdir -p {HostConnection.Quote(dir)} && ln -s {HostConnection.Quote(RemotePath(host))} {HostConnection.Quote(temp)} && mv -Tf {HostConnection.Quote(temp)} {HostConnection.Quote(link)}",
            "linking cutover for " + app, cancellationToken);
    }
}
