using System.Security.Cryptography;
using System.Text.Json;
using Cutover.Platform;
using Cutover.Releases;

namespace Cutover.Staging;

/// <summary>
/// The content index of a release: <c>.cutover/hashes/&lt;id&gt;.json</c>, relative path -> sha256 of every regular
/// file as it went live (after the hooks). One format for staging's reuse of identical content and for a fleet
/// host telling the deployer what it already holds (Fleet/ReleaseHashes reads it through here).
/// </summary>
public static class ContentIndex
{
    /// <summary>
    /// Paths are keys and must stay as they are: Cutover's JSON dialect (Json.Options) snake_cases dictionary keys,
    /// which is how indexes before this one were written ("public/MyClass.php" became "public/my_class.php").
    /// Written compact, which is also how an index of this format is told from those (see <see cref="IsVerbatim"/>).
    /// </summary>
    private static readonly JsonSerializerOptions Format = new() { WriteIndented = false };

    public static string FileFor(RootLayout layout, ReleaseId id) => layout.ContentIndexFile(id);

    /// <summary>The saved index, or null when there is none (a release staged before indexes existed) or it is damaged.</summary>
    public static IReadOnlyDictionary<string, string>? Load(RootLayout layout, ReleaseId id)
    {
        var file = FileFor(layout, id);
        if (!File.Exists(file)) return null;
        try
        {
            return JsonSerializer.Deserialize<Dictionary<string, string>>(File.ReadAllText(file), Format);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public static void Save(RootLayout layout, ReleaseId id, IReadOnlyDictionary<string, string> hashes)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(FileFor(layout, id))!);
        AtomicFile.WriteAllText(FileFor(layout, id), JsonSerializer.Serialize(hashes, Format));
    }

    /// <summary>Whether the saved index keeps paths verbatim (this format) rather than snake_cased (older ones).</summary>
    public static bool IsVerbatim(RootLayout layout, ReleaseId id)
    {
        using var stream = new FileStream(FileFor(layout, id), FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
        Span<byte> start = stackalloc byte[2];
        return stream.Read(start) == 2 && start[0] == (byte)'{' && start[1] is (byte)'"' or (byte)'}';
    }

    /// <summary>Hashes every regular file under <paramref name="dir"/> (symlinks, such as shared paths, are left out).</summary>
    public static Dictionary<string, string> Compute(string dir)
    {
        var hashes = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!Directory.Exists(dir)) return hashes;
        foreach (var file in new DirectoryInfo(dir).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
        {
            if (file.LinkTarget is not null) continue;
            hashes[Path.GetRelativePath(dir, file.FullName).Replace('\\', '/')] = Sha256.OfFile(file.FullName);
        }
        return hashes;
    }

    /// <summary>
    /// The moment after which a change to a file shows as a ctime not older than this: the ctime of a file written
    /// now, on the same file system (so the same coarse clock) as the releases.
    /// </summary>
    public static long Now(RootLayout layout)
    {
        var dir = Path.Combine(layout.State, "hashes");
        Directory.CreateDirectory(dir);
        var marker = Path.Combine(dir, $".clock.{Environment.ProcessId}");
        File.WriteAllBytes(marker, []);
        try
        {
            return LibC.Stat(marker).CtimeNs;
        }
        finally
        {
            File.Delete(marker);
        }
    }
}

/// <summary>SHA-256 of files and buffers (hardware-accelerated where the CPU has SHA extensions).</summary>
public static class Sha256
{
    public static string OfFile(string path)
    {
        using var handle = LibC.OpenForRead(path);
        using var stream = new FileStream(handle, FileAccess.Read, 0);
        return Hex(SHA256.HashData(stream));
    }

    public static string Hex(ReadOnlySpan<byte> hash) => Convert.ToHexStringLower(hash);
}

/// <summary>
/// What earlier releases hold, by content: sha256 -> files in releases still on disk, the live (or newest) release
/// first. A file is offered for a hard link only when it is a regular file with the same permissions (write bits
/// aside: a shared file is read-only anyway) and still holds the content its index names: either its ctime is older
/// than the index (nothing has written it since it was hashed; a ctime equal to the index's may be the same clock
/// tick, so it does not count) or it is hashed again now.
/// </summary>
public sealed class EarlierContent
{
    private const UnixFileMode WriteBits = UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite;

    private sealed record Candidate(string FullPath, long TrustedBeforeNs);

    private readonly Dictionary<string, List<Candidate>> _bySha = new(StringComparer.Ordinal);
    /// <summary>Staging looks files up from several threads; each candidate is hashed again at most about once.</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string?> _rehashed = new(StringComparer.Ordinal);

    public static EarlierContent None => new();

    /// <summary>
    /// The indexes of <paramref name="linkBase"/> (computed and saved when it has none) and of every other release
    /// in <paramref name="others"/> that has one, newest first.
    /// </summary>
    public static EarlierContent Load(RootLayout layout, ReleaseId? linkBase, IEnumerable<ReleaseId> others)
    {
        var content = new EarlierContent();
        if (linkBase is not null && Directory.Exists(layout.ReleaseDir(linkBase)))
        {
            if (ContentIndex.Load(layout, linkBase) is null)
                ContentIndex.Save(layout, linkBase, ContentIndex.Compute(layout.ReleaseDir(linkBase)));
            content.Add(layout, linkBase);
        }
        foreach (var id in others.Where(id => id != linkBase).OrderByDescending(id => id))
            if (Directory.Exists(layout.ReleaseDir(id))) content.Add(layout, id);
        return content;
    }

    /// <summary>A directory without a saved index (tests, the bench): every candidate is hashed again before use.</summary>
    public static EarlierContent OfDirectory(string dir)
    {
        var content = new EarlierContent();
        foreach (var (path, sha) in ContentIndex.Compute(dir))
            content.Offer(sha, Path.Combine(dir, path), long.MinValue);
        return content;
    }

    private void Add(RootLayout layout, ReleaseId id)
    {
        if (ContentIndex.Load(layout, id) is not { } index) return;
        if (LibC.TryStat(ContentIndex.FileFor(layout, id)) is not { } indexStatus) return;
        // An older index may name a different file than it hashed (its paths were snake_cased): every candidate it
        // offers is hashed again before use.
        var trustedBefore = ContentIndex.IsVerbatim(layout, id) ? indexStatus.MtimeNs : long.MinValue;
        var dir = layout.ReleaseDir(id);
        foreach (var (path, sha) in index)
        {
            if (!StaysInside(path)) continue; // never follow a damaged index out of the release
            Offer(sha, Path.Combine(dir, path), trustedBefore);
        }
    }

    private static bool StaysInside(string path)
    {
        try
        {
            return ArtifactPaths.Normalize(path, "index") == path;
        }
        catch (ArtifactException)
        {
            return false;
        }
    }

    private void Offer(string sha, string fullPath, long trustedBeforeNs)
    {
        if (!_bySha.TryGetValue(sha, out var list)) _bySha[sha] = list = [];
        list.Add(new Candidate(fullPath, trustedBeforeNs));
    }

    /// <summary>A file of an earlier release with exactly this content and these permissions, or null.</summary>
    public (string Path, FileStatus Status)? Find(string sha, long size, UnixFileMode mode)
    {
        if (!_bySha.TryGetValue(sha, out var candidates)) return null;
        foreach (var candidate in candidates)
        {
            if (LibC.TryStat(candidate.FullPath) is not { } status) continue;
            if (status.Type != UnixFileType.Regular || status.Size != size || (status.Mode & ~WriteBits) != (mode & ~WriteBits)) continue;
            if (status.CtimeNs < candidate.TrustedBeforeNs || Rehash(candidate.FullPath) == sha)
                return (candidate.FullPath, status);
        }
        return null;
    }

    /// <summary>Written since it was indexed (or never indexed): what it holds now, once per deploy.</summary>
    private string? Rehash(string path)
    {
        if (_rehashed.TryGetValue(path, out var known)) return known;
        string? sha;
        try
        {
            sha = Sha256.OfFile(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            sha = null;
        }
        return _rehashed[path] = sha;
    }

    /// <summary>
    /// Makes a file that two releases share read-only for everyone, so a write in place fails (EACCES) instead of
    /// changing the other release. Root bypasses modes; see the README.
    /// </summary>
    public static void Protect(string path, FileStatus status)
    {
        if ((status.Mode & WriteBits) != 0) File.SetUnixFileMode(path, status.Mode & ~WriteBits);
    }

    internal static bool SamePermissions(UnixFileMode a, UnixFileMode b) => (a & ~WriteBits) == (b & ~WriteBits);
}
