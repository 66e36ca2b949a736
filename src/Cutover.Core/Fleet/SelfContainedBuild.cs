using System.Security.Cryptography;

namespace Cutover.Fleet;

/// <summary>
/// The build that gets installed on fleet hosts, so a host needs nothing but sshd and a shell: a directory with the Native
/// AOT <c>cutover</c> (status, releases, rollback, probe answer at once, issue 14) and, in <c>jit/</c>, the self-contained
/// single-file JIT build it hands every other command to (`remote session`, the agent). <see cref="Version"/> names it on
/// the host: the informational version plus a short hash of both files, so two different builds of one version never
/// overwrite each other and a native binary is never paired with another build's JIT half.
/// </summary>
public sealed record SelfContainedBuild(string Directory, string Version)
{
    public const string EnvironmentVariable = "CUTOVER_SELF_CONTAINED";

    /// <summary>Where the JIT build sits beside the native binary, in every published build (NativeBuild hands over to it; Cutover.csproj publishes it there).</summary>
    public const string JitDirectory = "jit";

    public const string PublishCommand = "dotnet publish src/Cutover -c Release -r linux-x64 --self-contained -p:PublishSingleFile=true -o DIR";

    public string NativePath => System.IO.Path.Combine(Directory, "cutover");

    public string JitPath => System.IO.Path.Combine(Directory, JitDirectory, "cutover");

    /// <summary>
    /// The build this process belongs to when it is the single-file JIT half of one (the native binary handed it the
    /// command from the directory above); otherwise the native binary named by CUTOVER_SELF_CONTAINED.
    /// </summary>
    public static SelfContainedBuild Locate(Func<string, string?> environment)
    {
        var assembly = typeof(SelfContainedBuild).Assembly;
        // A single-file build carries its assemblies inside; anything else (dotnet exec, an apphost beside its
        // DLLs) has this assembly as a file next to it.
        var singleFile = !File.Exists(System.IO.Path.Combine(AppContext.BaseDirectory, assembly.GetName().Name + ".dll"));
        string? native;
        if (singleFile)
        {
            var process = Environment.ProcessPath!;
            var dir = System.IO.Path.GetDirectoryName(process)!;
            native = System.IO.Path.GetFileName(dir) == JitDirectory ? System.IO.Path.Combine(System.IO.Path.GetDirectoryName(dir)!, "cutover") : null;
            if (native is null || !File.Exists(native))
                throw new DeployException(
                    $"{process} is a single-file cutover without the native cutover above its directory, and fleet hosts get both. " +
                    $"Publish the fleet build with `{PublishCommand}` and run DIR/cutover, or set {EnvironmentVariable}=DIR/cutover");
        }
        else
        {
            native = environment(EnvironmentVariable);
            if (string.IsNullOrEmpty(native) || !File.Exists(native))
                throw new DeployException(
                    (string.IsNullOrEmpty(native) ? "" : $"{EnvironmentVariable}={native} does not exist. ") +
                    "Deploying to hosts installs Cutover's fleet build on them (the native cutover and its self-contained JIT build in jit/), and this cutover is not one. " +
                    $"Publish it with `{PublishCommand}` and run DIR/cutover, or set {EnvironmentVariable}=DIR/cutover");
        }
        var build = new SelfContainedBuild(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(native))!, "");
        if (!File.Exists(build.JitPath))
            throw new DeployException(
                $"{build.NativePath} has no {JitDirectory}/cutover beside it, the JIT half of the fleet build (remote session and the agent run in it). " +
                $"Publish both with `{PublishCommand}` and set {EnvironmentVariable}=DIR/cutover");
        var clean = new string(CutoverVersion.Built.Split('+')[0].Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '-').ToArray());
        return build with { Version = $"{clean}-{HashOf(build.NativePath, build.JitPath)}" };
    }

    private static string HashOf(params string[] paths)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 20];
        foreach (var path in paths)
        {
            using var stream = File.OpenRead(path);
            int read;
            while ((read = stream.Read(buffer)) > 0) hash.AppendData(buffer, 0, read);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..12];
    }
}
