namespace Cutover.Fleet;

/// <summary>
/// Puts the fleet build on a host once per version: ~/.cutover/bin/&lt;version&gt;/cutover (native) and jit/cutover beside it.
/// Atomic as a pair: both are uploaded into a temporary directory, made executable, and the directory is renamed to the
/// version's, so a host never runs a half-sent binary or a native one without its JIT half, and two deploys installing at
/// once both end with a whole one. Each app also links the build its last deploy or rollback used, so read-only commands
/// (status, releases) run that one and install nothing.
/// </summary>
public sealed class RemoteInstaller(SelfContainedBuild build)
{
    public static string BinDir(HostConnection host) => $"{host.Home}/.cutover/bin";

    /// <summary>A link to the build the last deploy or rollback of this app and root ran (<see cref="HostAppState"/>).</summary>
    public static string AppBinary(HostConnection host, string app) => HostAppState.BinaryLink(host, app);

    public string RemoteDirectory(HostConnection host) => $"{BinDir(host)}/{build.Version}";

    /// <summary>The native binary on the host, the one every command is run with (it hands what it does not run to jit/).</summary>
    public string RemotePath(HostConnection host) => $"{RemoteDirectory(host)}/cutover";

    /// <summary>Returns the path of cutover on the host, and whether it had to be sent.</summary>
    public async Task<(string Path, bool Sent)> EnsureAsync(HostConnection host, CancellationToken cancellationToken)
    {
        var target = RemoteDirectory(host);
        var jit = $"{target}/{SelfContainedBuild.JitDirectory}/cutover";
        var installed = $"test -x {HostConnection.Quote(target + "/cutover")} && test -x {HostConnection.Quote(jit)}";
        var check = await host.RunAsync(installed, cancellationToken);
        if (check.ExitStatus == 0) return (RemotePath(host), false);
        var temp = $"{BinDir(host)}/.{build.Version}.{Guid.NewGuid():N}.tmp";
        var quotedTemp = HostConnection.Quote(temp);
        await host.RunCheckedAsync($"mkdir -p {HostConnection.Quote(temp + "/" + SelfContainedBuild.JitDirectory)}", "creating " + temp, cancellationToken);
        try
        {
            await using (var native = File.OpenRead(build.NativePath))
                await host.UploadAsync(native, temp + "/cutover", cancellationToken);
            await using (var jitBuild = File.OpenRead(build.JitPath))
                await host.UploadAsync(jitBuild, $"{temp}/{SelfContainedBuild.JitDirectory}/cutover", cancellationToken);
            // rename(2) of a directory never replaces a non-empty one: when another deploy installed this version first,
            // the rename fails and its whole build is used.
            await host.RunCheckedAsync(
                $"chmod 755 {quotedTemp}/cutover {quotedTemp}/{SelfContainedBuild.JitDirectory}/cutover && " +
                $"{{ mv -T {quotedTemp} {HostConnection.Quote(target)} 2>/dev/null || {{ {installed} && rm -rf {quotedTemp}; }}; }}",
                "installing cutover", cancellationToken);
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            // Best effort: when the connection itself failed this fails too, and the leftover is a hidden directory
            // no command reads.
            try { await host.RunAsync($"rm -rf {quotedTemp}", CancellationToken.None); }
            catch (Exception cleanup) when (cleanup is HostException || HostConnection.IsConnectionFailure(cleanup)) { }
            throw;
        }
        return (RemotePath(host), true);
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
