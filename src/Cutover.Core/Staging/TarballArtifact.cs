using System.Formats.Tar;
using System.IO.Compression;

namespace Cutover.Staging;

/// <summary>A .tar.gz (or plain .tar). Every member is checked before anything is written for it.</summary>
public sealed class TarballArtifact(string file) : IArtifactSource
{
    public string Description => file;

    public static bool Looks(string path) =>
        File.Exists(path) && (path.EndsWith(".tar.gz", StringComparison.OrdinalIgnoreCase)
                              || path.EndsWith(".tgz", StringComparison.OrdinalIgnoreCase)
                              || path.EndsWith(".tar", StringComparison.OrdinalIgnoreCase));

    public IEnumerable<ArtifactEntry> Entries(CancellationToken cancellationToken)
    {
        using var raw = File.OpenRead(file);
        var gzip = raw.ReadByte() == 0x1f && raw.ReadByte() == 0x8b;
        raw.Position = 0;
        using var stream = gzip ? new GZipStream(raw, CompressionMode.Decompress) : (Stream)raw;
        using var reader = new TarReader(stream);
        // Paths the archive has so far made files or hard links: a later member beneath one of them
        // ('index.php', then 'index.php/x') cannot be written, and tar refuses it too ("Not a directory").
        var leaves = new HashSet<string>(StringComparer.Ordinal);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            TarEntry? entry;
            try
            {
                entry = reader.GetNextEntry(copyData: false);
            }
            catch (Exception e) when (e is InvalidDataException or FormatException or EndOfStreamException)
            {
                throw new ArtifactException($"{file}: not a readable tar archive: {e.Message}");
            }
            if (entry is null) yield break;
            var path = ArtifactPaths.Normalize(entry.Name, file);
            if (path is null) continue; // "./", the archive's own root
            for (var slash = path.IndexOf('/'); slash > 0; slash = path.IndexOf('/', slash + 1))
                if (leaves.Contains(path[..slash]))
                    throw new ArtifactException($"{file}: entry '{path}' is inside '{path[..slash]}', which an earlier entry made a file, not a directory");
            // Symlinks are left to the stager, which refuses writing through one with its own message.
            if (entry.EntryType == TarEntryType.Directory) leaves.Remove(path);
            else if (entry.EntryType != TarEntryType.SymbolicLink) leaves.Add(path);
            var modified = entry.ModificationTime.UtcDateTime;
            switch (entry.EntryType)
            {
                case TarEntryType.Directory:
                    yield return new ArtifactEntry { Path = path, Kind = EntryKind.Directory, Mode = entry.Mode, ModifiedUtc = modified };
                    break;
                case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                    var data = entry.DataStream;
                    yield return new ArtifactEntry
                    {
                        Path = path,
                        Kind = EntryKind.File,
                        Mode = entry.Mode,
                        ModifiedUtc = modified,
                        Size = entry.Length,
                        OpenContent = () => data ?? Stream.Null,
                    };
                    break;
                case TarEntryType.SymbolicLink:
                    ArtifactPaths.CheckSymlink(path, entry.LinkName, file);
                    yield return new ArtifactEntry { Path = path, Kind = EntryKind.Symlink, LinkTarget = entry.LinkName, ModifiedUtc = modified };
                    break;
                case TarEntryType.HardLink:
                    var target = ArtifactPaths.Normalize(entry.LinkName, file)
                                 ?? throw new ArtifactException($"{file}: hard link '{path}' has no target");
                    yield return new ArtifactEntry { Path = path, Kind = EntryKind.HardLink, LinkTarget = target };
                    break;
                case TarEntryType.GlobalExtendedAttributes or TarEntryType.ExtendedAttributes:
                    break;
                default:
                    throw new ArtifactException($"{file}: entry '{entry.Name}' is a {entry.EntryType}, which cannot be deployed");
            }
        }
    }
}
