using System.Diagnostics;
using Cutover.Platform;

namespace Cutover.Doctor;

/// <summary>
/// Staging hard-links unchanged files from earlier releases, so root and releases/ must be one filesystem; tried
/// for real with link(2) from a probe file in root into releases/. Copy-on-write (`cp --reflink=always`) is
/// reported, not required.
/// </summary>
public sealed class RootFilesystemCheck(string root) : IDoctorCheck
{
    public string Name => "filesystem";

    public async Task<DoctorFinding> RunAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(root)) return DoctorFinding.Warning(Name, $"{root} does not exist yet; hard links are checked once it does");
        var releases = Path.Combine(root, "releases");
        var target = Directory.Exists(releases) ? releases : root;
        var probe = RootProbe.PathIn(root);
        var link = RootProbe.PathIn(target) + ".link";
        var clone = RootProbe.PathIn(target) + ".clone";
        try
        {
            try
            {
                await File.WriteAllTextAsync(probe, "cutover doctor\n", cancellationToken);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return DoctorFinding.Warning(Name, $"cannot create a file in {root} to try hard links: {e.Message}");
            }
            try
            {
                LibC.HardLink(probe, link);
            }
            catch (IOException e)
            {
                return DoctorFinding.Error(Name, $"cannot hard-link from {root} into {target}: {e.Message}; every release would be a full copy",
                    "keep root and releases/ on one filesystem that supports hard links (ext4, xfs, btrfs)");
            }
            var cow = await TryReflinkAsync(probe, clone, cancellationToken);
            return DoctorFinding.Ok(Name, $"hard links work in {target}{(cow ? "; copy-on-write is available" : "; no copy-on-write (reflink) on this filesystem")}");
        }
        finally
        {
            foreach (var path in new[] { probe, link, clone }) File.Delete(path);
        }
    }

    private static async Task<bool> TryReflinkAsync(string source, string target, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("cp") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var arg in new[] { "--reflink=always", source, target }) start.ArgumentList.Add(arg);
        try
        {
            using var cp = Process.Start(start)!;
            await cp.WaitForExitAsync(cancellationToken);
            return cp.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }
}
