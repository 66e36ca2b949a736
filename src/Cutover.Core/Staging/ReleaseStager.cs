using Cutover.Platform;

namespace Cutover.Staging;

/// <summary>
/// Writes an artifact into a new release directory. A file whose size, mtime and mode match the same path in
/// the previous release is hard-linked to it instead of copied (rsync --link-dest's quick check), so unchanged
/// files cost no disk and no I/O. Modes and mtimes are kept; symlinks stay symlinks.
/// </summary>
public sealed class ReleaseStager
{
    public StageResult Stage(IArtifactSource source, string releaseDir, string? previousReleaseDir, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(releaseDir);
        var symlinks = new HashSet<string>(StringComparer.Ordinal);
        var directories = new List<ArtifactEntry>();
        int files = 0, links = 0, linked = 0, copied = 0;
        long copiedBytes = 0;

        foreach (var entry in source.Entries(cancellationToken))
        {
            RefuseThroughSymlink(entry.Path, symlinks, source.Description);
            var target = Path.Combine(releaseDir, entry.Path);
            EnsureParent(target, releaseDir);
            switch (entry.Kind)
            {
                case EntryKind.Directory:
                    if (!Directory.Exists(target))
                    {
                        RemoveExisting(target);
                        Directory.CreateDirectory(target);
                    }
                    directories.Add(entry);
                    break;
                case EntryKind.Symlink:
                    RemoveExisting(target);
                    File.CreateSymbolicLink(target, entry.LinkTarget!);
                    symlinks.Add(entry.Path);
                    links++;
                    break;
                case EntryKind.HardLink:
                    var existing = Path.Combine(releaseDir, entry.LinkTarget!);
                    if (!File.Exists(existing))
                        throw new ArtifactException($"{source.Description}: hard link '{entry.Path}' points to '{entry.LinkTarget}', which is not earlier in the archive");
                    RemoveExisting(target);
                    LibC.HardLink(existing, target);
                    files++;
                    break;
                case EntryKind.File:
                    RemoveExisting(target);
                    files++;
                    if (entry.HardLinkFrom is { } same && Unchanged(entry, same) && TryHardLink(same, target))
                    {
                        linked++;
                        break;
                    }
                    if (previousReleaseDir is not null && Unchanged(entry, Path.Combine(previousReleaseDir, entry.Path))
                        && TryHardLink(Path.Combine(previousReleaseDir, entry.Path), target))
                    {
                        linked++;
                        break;
                    }
                    WriteFile(entry, target);
                    copied++;
                    copiedBytes += entry.Size;
                    break;
            }
        }

        // Writing children changes a directory's mtime, so directories get theirs last, deepest first.
        foreach (var dir in directories.OrderByDescending(d => d.Path.Length))
        {
            var path = Path.Combine(releaseDir, dir.Path);
            File.SetUnixFileMode(path, dir.Mode);
            Directory.SetLastWriteTimeUtc(path, dir.ModifiedUtc);
        }
        return new StageResult(files, directories.Count, links, linked, copied, copiedBytes);
    }

    private static bool Unchanged(ArtifactEntry entry, string previous)
    {
        var info = new FileInfo(previous);
        if (!info.Exists || (info.Attributes & FileAttributes.ReparsePoint) != 0) return false;
        return info.Length == entry.Size
               && info.LastWriteTimeUtc == entry.ModifiedUtc
               && info.UnixFileMode == entry.Mode;
    }

    /// <summary>A file system without hard links, or an inode at its link limit (EMLINK), gets a copy instead.</summary>
    private static bool TryHardLink(string existing, string target)
    {
        try
        {
            LibC.HardLink(existing, target);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private static void WriteFile(ArtifactEntry entry, string target)
    {
        if (entry.SourcePath is not null)
        {
            File.Copy(entry.SourcePath, target);
        }
        else
        {
            using var output = new FileStream(target, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
            entry.OpenContent!().CopyTo(output);
        }
        File.SetUnixFileMode(target, entry.Mode);
        File.SetLastWriteTimeUtc(target, entry.ModifiedUtc);
    }

    private static void RefuseThroughSymlink(string path, HashSet<string> symlinks, string artifact)
    {
        if (symlinks.Count == 0) return;
        for (var i = path.IndexOf('/'); i > 0; i = path.IndexOf('/', i + 1))
            if (symlinks.Contains(path[..i]))
                throw new ArtifactException($"{artifact}: entry '{path}' would be written through the symlink '{path[..i]}'");
    }

    private static void EnsureParent(string target, string releaseDir)
    {
        var parent = Path.GetDirectoryName(target)!;
        if (parent.Length > releaseDir.Length && !Directory.Exists(parent))
            Directory.CreateDirectory(parent);
    }

    /// <summary>A later archive member replaces an earlier one with the same name, as tar does.</summary>
    private static void RemoveExisting(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget is not null || info.Exists) info.Delete();
        else if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
    }
}
