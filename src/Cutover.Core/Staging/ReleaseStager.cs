using System.Buffers;
using System.Security.Cryptography;
using Cutover.Platform;

namespace Cutover.Staging;

/// <summary>How staging treats a file whose content an earlier release already holds.</summary>
public enum StagingMode
{
    /// <summary>Hard-link it now. Only when nothing runs in the release before the switch (no build or before_switch hooks).</summary>
    LinkIdentical,

    /// <summary>
    /// Write every file as the release's own copy, so hooks cannot reach another release through a shared inode;
    /// <see cref="ReleaseDeduper"/> links identical content after the hooks, before the switch.
    /// </summary>
    PrivateCopies,
}

/// <summary>
/// Writes an artifact into a new release directory. Every file is hashed (SHA-256) as it is read, once; a file is
/// reused from an earlier release only when its content is identical, whatever its path or mtime (a reused file
/// keeps the mtime of the release that first had it). Size, mtime and mode decide nothing: reproducible builds
/// give every file the same mtime, CI builds give every file a new one. Shared inodes are made read-only.
/// Modes and mtimes of written files are kept; symlinks stay symlinks.
/// </summary>
public sealed class ReleaseStager
{
    /// <summary>Files up to this size are read whole into memory, hashed, then either linked or written from memory.</summary>
    private const int WholeFileLimit = 1 << 20;

    /// <summary>Staging against one earlier release directory that has no index (tests, the bench's stage command).</summary>
    public StageResult Stage(IArtifactSource source, string releaseDir, string? previousReleaseDir, CancellationToken cancellationToken) =>
        Stage(source, releaseDir, previousReleaseDir is null ? EarlierContent.None : EarlierContent.OfDirectory(previousReleaseDir),
            StagingMode.LinkIdentical, cancellationToken);

    public StageResult Stage(IArtifactSource source, string releaseDir, EarlierContent earlier, StagingMode mode, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(releaseDir);
        var symlinks = new HashSet<string>(StringComparer.Ordinal);
        var directories = new List<ArtifactEntry>();
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        // The release directory starts empty, so only a path an earlier entry wrote can exist (a tar may name a
        // path twice), and only directories made here do: no stat per entry to find out.
        var written = new HashSet<string>(StringComparer.Ordinal);
        var madeDirs = new HashSet<string>(StringComparer.Ordinal);
        void Replace(string path, string target)
        {
            if (!written.Contains(path)) return;
            RemoveExisting(target);
            madeDirs.Clear(); // what was removed may have held directories
        }
        var deferred = new List<(ArtifactEntry Entry, string Target)>();
        int files = 0, links = 0, linked = 0, copied = 0;
        long copiedBytes = 0;

        foreach (var entry in source.Entries(cancellationToken))
        {
            RefuseThroughSymlink(entry.Path, symlinks, source.Description);
            var target = Path.Combine(releaseDir, entry.Path);
            var slash = entry.Path.LastIndexOf('/');
            if (slash > 0 && madeDirs.Add(entry.Path[..slash])) EnsureParent(target, releaseDir);
            switch (entry.Kind)
            {
                case EntryKind.Directory:
                    if (!madeDirs.Contains(entry.Path) && !Directory.Exists(target))
                    {
                        Replace(entry.Path, target);
                        Directory.CreateDirectory(target);
                    }
                    madeDirs.Add(entry.Path);
                    written.Add(entry.Path);
                    directories.Add(entry);
                    break;
                case EntryKind.Symlink:
                    Replace(entry.Path, target);
                    written.Add(entry.Path);
                    File.CreateSymbolicLink(target, entry.LinkTarget!);
                    symlinks.Add(entry.Path);
                    links++;
                    break;
                case EntryKind.HardLink:
                    var existing = Path.Combine(releaseDir, entry.LinkTarget!);
                    if (!File.Exists(existing))
                        throw new ArtifactException($"{source.Description}: hard link '{entry.Path}' points to '{entry.LinkTarget}', which is not earlier in the archive");
                    Replace(entry.Path, target);
                    written.Add(entry.Path);
                    LibC.HardLink(existing, target);
                    if (hashes.TryGetValue(entry.LinkTarget!, out var same)) hashes[entry.Path] = same;
                    files++;
                    break;
                case EntryKind.File:
                    Replace(entry.Path, target);
                    written.Add(entry.Path);
                    files++;
                    if (source is DirectoryArtifact)
                    {
                        // Distinct paths, content in files of their own: staged below on every core.
                        deferred.Add((entry, target));
                        break;
                    }
                    Count(entry.Path, StageFile(entry, target, earlier, mode, source.Description));
                    break;
            }
        }
        if (deferred.Count > 0)
        {
            var results = new (string Sha, long Size, bool Linked)[deferred.Count];
            try
            {
                Parallel.For(0, deferred.Count, new ParallelOptions { CancellationToken = cancellationToken, MaxDegreeOfParallelism = Environment.ProcessorCount },
                    i => results[i] = StageFile(deferred[i].Entry, deferred[i].Target, earlier, mode, source.Description));
            }
            catch (AggregateException e)
            {
                // The first failure as itself: an ArtifactException stays one (bad input, exit 2).
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
            }
            for (var i = 0; i < deferred.Count; i++) Count(deferred[i].Entry.Path, results[i]);
        }

        void Count(string path, (string Sha, long Size, bool Linked) staged)
        {
            hashes[path] = staged.Sha;
            if (staged.Linked)
            {
                linked++;
            }
            else
            {
                copied++;
                copiedBytes += staged.Size;
            }
        }

        // Writing children changes a directory's mtime, so directories get theirs last, deepest first.
        foreach (var dir in directories.OrderByDescending(d => d.Path.Length))
        {
            var path = Path.Combine(releaseDir, dir.Path);
            File.SetUnixFileMode(path, dir.Mode);
            Directory.SetLastWriteTimeUtc(path, dir.ModifiedUtc);
        }

        // With private copies, each file as it is now (links and chmods move ctime), so the dedupe pass can tell
        // what a hook touched. Linked releases have no such pass and skip the stat.
        var content = new Dictionary<string, StagedFile>(hashes.Count, StringComparer.Ordinal);
        foreach (var (path, sha) in hashes)
        {
            if (mode == StagingMode.LinkIdentical) content[path] = new StagedFile(sha, default);
            else if (LibC.TryStat(Path.Combine(releaseDir, path)) is { Type: UnixFileType.Regular } status) content[path] = new StagedFile(sha, status);
        }
        return new StageResult(files, directories.Count, links, linked, copied, copiedBytes) { Content = content };
    }

    /// <summary>One file: linked to identical content of an earlier release, or written (hashing as it is read).</summary>
    private static (string Sha, long Size, bool Linked) StageFile(ArtifactEntry entry, string target, EarlierContent earlier, StagingMode mode, string artifact)
    {
        var linking = mode == StagingMode.LinkIdentical;
        // A fleet manifest names the hash up front: content the host already has is linked without reading anything.
        if (linking && entry.Sha256 is { } known && earlier.Find(known, entry.Size, entry.Mode) is { } hit && TryLink(hit.Path, hit.Status, target, replace: false))
            return (known, entry.Size, true);

        using var input = entry.SourcePath is not null
            ? new FileStream(LibC.OpenForRead(entry.SourcePath), FileAccess.Read, 0)
            : entry.OpenContent!();
        byte[]? whole = null;
        try
        {
            var length = 0;
            if (linking && entry.Size <= WholeFileLimit)
            {
                // One byte more than listed tells a file that grew since it was listed from one read in full.
                whole = ArrayPool<byte>.Shared.Rent((int)entry.Size + 1);
                length = input.ReadAtLeast(whole.AsSpan(0, (int)entry.Size + 1), (int)entry.Size + 1, throwOnEndOfStream: false);
                if (length <= entry.Size)
                {
                    var sha = Sha256.Hex(SHA256.HashData(whole.AsSpan(0, length)));
                    Verify(entry, sha, artifact);
                    if (earlier.Find(sha, length, entry.Mode) is { } same && TryLink(same.Path, same.Status, target, replace: false))
                        return (sha, length, true);
                    using (var output = LibC.CreateNew(target))
                        RandomAccess.Write(output, whole.AsSpan(0, length), 0);
                    KeepMetadata(entry, target);
                    return (sha, length, false);
                }
            }
            var (streamedSha, size) = CopyHashing(whole.AsSpan(0, length), input, target);
            Verify(entry, streamedSha, artifact);
            KeepMetadata(entry, target);
            if (linking && earlier.Find(streamedSha, size, entry.Mode) is { } match && TryLink(match.Path, match.Status, target, replace: true))
                return (streamedSha, size, true);
            return (streamedSha, size, false);
        }
        finally
        {
            if (whole is not null) ArrayPool<byte>.Shared.Return(whole);
        }
    }

    private static (string Sha, long Size) CopyHashing(ReadOnlySpan<byte> alreadyRead, Stream input, string target)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 17);
        long size = alreadyRead.Length;
        try
        {
            using var output = new FileStream(LibC.CreateNew(target), FileAccess.Write, 0);
            hash.AppendData(alreadyRead);
            output.Write(alreadyRead);
            int read;
            while ((read = input.Read(buffer, 0, buffer.Length)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                output.Write(buffer, 0, read);
                size += read;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return (Sha256.Hex(hash.GetHashAndReset()), size);
    }

    /// <summary>A manifest's hash is a promise about the content; content that breaks it never goes live.</summary>
    private static void Verify(ArtifactEntry entry, string sha, string artifact)
    {
        if (entry.Sha256 is { } expected && !string.Equals(expected, sha, StringComparison.OrdinalIgnoreCase))
            throw new ArtifactException($"{artifact}: the content of '{entry.Path}' has sha256 {sha[..12]}, not the {expected[..Math.Min(12, expected.Length)]} its manifest names");
    }

    private static void KeepMetadata(ArtifactEntry entry, string target)
    {
        File.SetUnixFileMode(target, entry.Mode);
        File.SetLastWriteTimeUtc(target, entry.ModifiedUtc);
    }

    /// <summary>
    /// Hard-links <paramref name="target"/> to an earlier release's identical file and makes the shared inode
    /// read-only. With <paramref name="replace"/> a written copy is replaced atomically (link to a temp name, rename
    /// over). False (and the copy stays) on a file system without hard links or an inode at its link limit (EMLINK).
    /// </summary>
    internal static bool TryLink(string existing, FileStatus existingStatus, string target, bool replace)
    {
        var name = replace ? Path.Combine(Path.GetDirectoryName(target)!, $".{Path.GetFileName(target)}.cutover-link") : target;
        try
        {
            if (replace) File.Delete(name);
            LibC.HardLink(existing, name);
        }
        catch (IOException)
        {
            return false;
        }
        if (replace) LibC.Rename(name, target);
        EarlierContent.Protect(target, existingStatus);
        return true;
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
