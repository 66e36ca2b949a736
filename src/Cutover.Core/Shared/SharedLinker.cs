using Cutover.Config;
using Cutover.Platform;
using Cutover.Releases;

namespace Cutover.Shared;

/// <summary>
/// Replaces a release's copy of each shared path with a relative symlink into <c>shared/</c>.
/// A missing shared dir is created and seeded once from the release; a missing shared file is seeded from
/// the release or the deploy stops naming it (never an empty file the app would then read).
/// </summary>
public sealed class SharedLinker(RootLayout layout)
{
    public sealed record Outcome(IReadOnlyList<string> Linked, IReadOnlyList<string> Seeded);

    public Outcome Link(SharedConfig shared, string releaseDir)
    {
        var linked = new List<string>();
        var seeded = new List<string>();
        foreach (var (path, isDir) in shared.Dirs.Select(d => (d, true)).Concat(shared.Files.Select(f => (f, false))))
        {
            var inRelease = Path.Combine(releaseDir, path);
            var inShared = Path.Combine(layout.Shared, path);
            RefuseSymlinkedParents(releaseDir, path);
            RefuseSymlinkedParents(layout.Shared, path);

            var releaseHasCopy = new FileInfo(inRelease).LinkTarget is null && (isDir ? Directory.Exists(inRelease) : File.Exists(inRelease));
            if (isDir && File.Exists(inRelease) && new FileInfo(inRelease).LinkTarget is null)
                throw new DeployException($"shared dir '{path}' is a file in the release; list it under shared.files instead");
            if (!isDir && Directory.Exists(inRelease) && new FileInfo(inRelease).LinkTarget is null)
                throw new DeployException($"shared file '{path}' is a directory in the release; list it under shared.dirs instead");

            if (!(isDir ? Directory.Exists(inShared) : File.Exists(inShared)))
            {
                if (isDir ? File.Exists(inShared) : Directory.Exists(inShared))
                    throw new DeployException($"{inShared} exists but is a {(isDir ? "file" : "directory")}; shared {(isDir ? "dirs" : "files")} lists '{path}'");
                if (!isDir && !releaseHasCopy)
                    throw new DeployException(
                        $"shared file '{path}' does not exist: create {inShared} (or ship {path} in the artifact to seed it once)");
                Seed(inRelease, inShared, isDir, releaseHasCopy);
                seeded.Add(path);
            }

            if (releaseHasCopy)
            {
                if (isDir) ReleaseStore.DeleteTree(inRelease);
                else File.Delete(inRelease);
            }
            else if (new FileInfo(inRelease).LinkTarget is not null)
            {
                File.Delete(inRelease);
            }
            Directory.CreateDirectory(Path.GetDirectoryName(inRelease)!);
            File.CreateSymbolicLink(inRelease, RelativeTarget(releaseDir, path));
            linked.Add(path);
        }
        return new Outcome(linked, seeded);
    }

    /// <summary>
    /// Seeds into a temporary name first and renames it into place, so a deploy killed mid-copy never leaves a
    /// half-seeded shared path that later deploys would trust.
    /// </summary>
    private static void Seed(string inRelease, string inShared, bool isDir, bool fromRelease)
    {
        var parent = Path.GetDirectoryName(inShared)!;
        Directory.CreateDirectory(parent);
        var temp = Path.Combine(parent, $".{Path.GetFileName(inShared)}.seeding");
        if (Directory.Exists(temp)) ReleaseStore.DeleteTree(temp);
        else File.Delete(temp);
        if (isDir)
        {
            if (fromRelease) CopyTree(inRelease, temp);
            else Directory.CreateDirectory(temp);
        }
        else
        {
            File.Copy(inRelease, temp);
        }
        LibC.Rename(temp, inShared);
        LibC.FsyncDirectory(parent);
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        File.SetUnixFileMode(to, File.GetUnixFileMode(from));
        foreach (var info in new DirectoryInfo(from).EnumerateFileSystemInfos())
        {
            var target = Path.Combine(to, info.Name);
            if (info.LinkTarget is { } link) File.CreateSymbolicLink(target, link);
            else if (info is DirectoryInfo dir) CopyTree(dir.FullName, target);
            else File.Copy(info.FullName, target);
        }
    }

    /// <summary>From releases/&lt;id&gt;/a/b to ../../../shared/a/b: relative, so the whole root can move.</summary>
    private static string RelativeTarget(string releaseDir, string path)
    {
        var depth = path.Count(c => c == '/') + 2; // up through the path's parents, the release dir and releases/
        return string.Concat(Enumerable.Repeat("../", depth)) + "shared/" + path;
    }

    private static void RefuseSymlinkedParents(string baseDir, string path)
    {
        var parts = path.Split('/');
        var current = baseDir;
        for (var i = 0; i < parts.Length - 1; i++)
        {
            current = Path.Combine(current, parts[i]);
            if (new FileInfo(current).LinkTarget is not null)
                throw new DeployException($"shared path '{path}' goes through the symlink {current}; it would leave the root");
        }
    }
}
