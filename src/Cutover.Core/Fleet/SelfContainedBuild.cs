using System.Reflection;
using System.Security.Cryptography;

namespace Cutover.Fleet;

/// <summary>
/// The single-file, self-contained cutover that gets installed on fleet hosts, so a host needs nothing but sshd
/// and a shell. <see cref="Version"/> names it on the host: the informational version plus a short hash of the
/// binary, so two different builds of one version never overwrite each other.
/// </summary>
public sealed record SelfContainedBuild(string Path, string Version)
{
    public const string EnvironmentVariable = "CUTOVER_SELF_CONTAINED";

    /// <summary>
    /// This process when it is itself a single-file build; otherwise the
    /// build named by CUTOVER_SELF_CONTAINED.
    /// </summary>
    public static SelfContainedBuild Locate(Func<string, string?> environment)
    {
        var assembly = typeof(SelfContainedBuild).Assembly;
        // A single-file build carries its assemblies inside; anything else (dotnet exec, an apphost beside its
        // DLLs) has this assembly as a file next to it.
        var singleFile = !File.Exists(System.IO.Path.Combine(AppContext.BaseDirectory, assembly.GetName().Name + ".dll"));
        string? path = singleFile ? Environment.ProcessPath : environment(EnvironmentVariable);
        if (string.IsNullOrEmpty(path) || !File.Exists(path))
            throw new DeployException(
                (string.IsNullOrEmpty(path) ? "" : $"{EnvironmentVariable}={path} does not exist. ") +
                "Deploying to hosts installs Cutover's self-contained single-file build on them, and this cutover is not one. Publish it with " +
                "`dotnet publish src/Cutover -c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -o DIR` and run DIR/cutover, " +
                $"or set {EnvironmentVariable}=DIR/cutover");
        var clean = new string(CutoverVersion.Built.Split('+')[0].Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '-').ToArray());
        using var stream = File.OpenRead(path);
        var hash = Convert.ToHexStringLower(SHA256.HashData(stream))[..12];
        return new SelfContainedBuild(System.IO.Path.GetFullPath(path), $"{clean}-{hash}");
    }
}
