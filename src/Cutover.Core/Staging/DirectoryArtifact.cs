using Cutover.Platform;

namespace Cutover.Staging;

/// <summary>A build output directory. <c>.git</c> at its top is left out: a release is what gets served.</summary>
/// <param name="leaveOut">Relative paths not read at all (nor what lies under them): a live release's shared links, for `deploy --env-only`.</param>
public sealed class DirectoryArtifact(string root, IReadOnlySet<string>? leaveOut = null) : IArtifactSource
{
    public string Description => root;

    public IEnumerable<ArtifactEntry> Entries(CancellationToken cancellationToken) => Walk(root, "", cancellationToken);

    /// <summary>One statx per entry (type, mode, size, mtime), and readlink only for symlinks.</summary>
    private IEnumerable<ArtifactEntry> Walk(string dir, string prefix, CancellationToken cancellationToken)
    {
        var entries = Directory.EnumerateFileSystemEntries(dir, "*", new EnumerationOptions
        {
            AttributesToSkip = 0,
            IgnoreInaccessible = false,
            RecurseSubdirectories = false,
        }).Select(full => (Full: full, Name: Path.GetFileName(full))).OrderBy(e => e.Name, StringComparer.Ordinal);
        foreach (var (full, name) in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (prefix.Length == 0 && name == ".git") continue;
            var path = prefix + name;
            if (leaveOut?.Contains(path) == true) continue;
            var status = LibC.Stat(full);
            var modified = DateTime.UnixEpoch.AddTicks(status.MtimeNs / 100);
            switch (status.Type)
            {
                case UnixFileType.Symlink:
                    var target = new FileInfo(full).LinkTarget!;
                    ArtifactPaths.CheckSymlink(path, target, root);
                    yield return new ArtifactEntry { Path = path, Kind = EntryKind.Symlink, LinkTarget = target };
                    break;
                case UnixFileType.Directory:
                    yield return new ArtifactEntry { Path = path, Kind = EntryKind.Directory, Mode = status.Mode, ModifiedUtc = modified };
                    foreach (var child in Walk(full, path + "/", cancellationToken))
                        yield return child;
                    break;
                case UnixFileType.Regular:
                    yield return new ArtifactEntry
                    {
                        Path = path,
                        Kind = EntryKind.File,
                        Mode = status.Mode,
                        ModifiedUtc = modified,
                        Size = status.Size,
                        SourcePath = full,
                    };
                    break;
                default:
                    throw new ArtifactException($"{root}: '{path}' is not a regular file, directory or symlink (a socket, fifo or device cannot be deployed)");
            }
        }
    }
}
