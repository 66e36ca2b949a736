using Cutover.Platform;

namespace Cutover.Staging;

/// <summary>What the dedupe pass found: <see cref="Hashes"/> is the release's content index as it goes live.</summary>
public sealed record DedupeResult(int Files, int SharedFiles, int OwnFiles, long OwnBytes, int Rehashed, IReadOnlyDictionary<string, string> Hashes);

/// <summary>
/// The pass after the hooks and before the switch of a release staged with private copies: each file whose content
/// equals a file of an earlier release (same permissions too) is replaced by a hard link to it (link to a temp name,
/// rename over), and the shared inode is made read-only. A file is hashed again only when it could have changed since
/// staging hashed it: a different inode, size, mtime or ctime, or a ctime not older than the moment the hooks could
/// start (the same clock tick could hide a write).
/// </summary>
public static class ReleaseDeduper
{
    public static DedupeResult Dedupe(string releaseDir, IReadOnlyDictionary<string, StagedFile> staged, long hooksStartedNs,
        EarlierContent earlier, CancellationToken cancellationToken)
    {
        var hashes = new Dictionary<string, string>(staged.Count, StringComparer.Ordinal);
        int files = 0, shared = 0, own = 0, rehashed = 0;
        long ownBytes = 0;
        var pending = new Stack<string>();
        pending.Push("");
        while (pending.Count > 0)
        {
            var relativeDir = pending.Pop();
            var dir = relativeDir.Length == 0 ? releaseDir : Path.Combine(releaseDir, relativeDir);
            foreach (var full in Directory.EnumerateFileSystemEntries(dir))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var relative = relativeDir.Length == 0 ? Path.GetFileName(full) : relativeDir + "/" + Path.GetFileName(full);
                var status = LibC.Stat(full);
                if (status.Type == UnixFileType.Directory)
                {
                    pending.Push(relative);
                    continue;
                }
                if (status.Type != UnixFileType.Regular) continue; // symlinks (shared paths among them) hold no content here
                if (Path.GetFileName(full).EndsWith(".cutover-link", StringComparison.Ordinal)) continue;
                files++;
                string sha;
                if (staged.TryGetValue(relative, out var before) && Untouched(before.Status, status, hooksStartedNs))
                {
                    sha = before.Sha256;
                }
                else
                {
                    sha = Sha256.OfFile(full);
                    rehashed++;
                }
                hashes[relative] = sha;
                if (earlier.Find(sha, status.Size, status.Mode) is { } same && same.Status.Inode != status.Inode
                    && ReleaseStager.TryLink(same.Path, same.Status, full, replace: true))
                {
                    shared++;
                }
                else
                {
                    own++;
                    ownBytes += status.Size;
                }
            }
        }
        return new DedupeResult(files, shared, own, ownBytes, rehashed, hashes);
    }

    private static bool Untouched(FileStatus before, FileStatus now, long hooksStartedNs) =>
        before.Inode == now.Inode && before.Size == now.Size && before.MtimeNs == now.MtimeNs && before.CtimeNs == now.CtimeNs
        && before.CtimeNs < hooksStartedNs;
}
