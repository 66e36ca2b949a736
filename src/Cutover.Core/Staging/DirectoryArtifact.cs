using Cutover.Platform;

namespace Cutover.Staging;

/// <summary>A build output directory. <c>.git</c> at its top is left out: a release is what gets served.</summary>
public sealed class DirectoryArtifact(string root) : IArtifactSource
{
    public string Description => root;

    public IEnumerable<ArtifactEntry> Entries(CancellationToken cancellationToken) => Walk(root, "", cancellationToken);

    private IEnumerable<ArtifactEntry> Walk(string dir, string prefix, CancellationToken cancellationToken)
    {
        var entries = new DirectoryInfo(dir).EnumerateFileSystemInfos("*", new EnumerationOptions
        {
            AttributesToSkip = 0,
            IgnoreInaccessible = false,
            RecurseSubdirectories = false,
        }).OrderBy(e => e.Name, StringComparer.Ordinal);
        foreach (var info in entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (prefix.Length == 0 && info.Name == ".git") continue;
            var path = prefix + info.Name;
            if (info.LinkTarget is { } target)
            {
                ArtifactPaths.CheckSymlink(path, target, root);
                yield return new ArtifactEntry { Path = path, Kind = EntryKind.Symlink, LinkTarget = target };
            }
            else if (info is DirectoryInfo sub)
            {
                yield return new ArtifactEntry { Path = path, Kind = EntryKind.Directory, Mode = sub.UnixFileMode, ModifiedUtc = sub.LastWriteTimeUtc };
                foreach (var child in Walk(sub.FullName, path + "/", cancellationToken))
                    yield return child;
            }
            else if (info is FileInfo file && LibC.FileType(file.FullName) == UnixFileType.Regular)
            {
                yield return new ArtifactEntry
                {
                    Path = path,
                    Kind = EntryKind.File,
                    Mode = file.UnixFileMode,
                    ModifiedUtc = file.LastWriteTimeUtc,
                    Size = file.Length,
                    SourcePath = file.FullName,
                };
            }
            else
            {
                throw new ArtifactException($"{root}: '{path}' is not a regular file, directory or symlink (a socket, fifo or device cannot be deployed)");
            }
        }
    }
}
