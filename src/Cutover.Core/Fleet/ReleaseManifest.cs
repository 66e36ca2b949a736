using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using Cutover.Platform;
using Cutover.Releases;
using Cutover.Staging;

namespace Cutover.Fleet;

/// <summary>One entry of an artifact as it travels to a fleet host: metadata, and the content's sha256 for files.</summary>
public sealed record ManifestEntry
{
    public required string Path { get; init; }
    public required string Kind { get; init; } // file | dir | symlink | hardlink
    public int Mode { get; init; }
    public DateTime Mtime { get; init; }
    public long Size { get; init; }
    public string? Sha256 { get; init; }
    public string? Target { get; init; }
}

public sealed record ReleaseManifest(string Description, IReadOnlyList<ManifestEntry> Entries)
{
    public const string FileName = "manifest.json";

    /// <summary>What the deployer uploaded, read strictly: a damaged manifest fails the prepare with its reason, never a half release.</summary>
    public static ReleaseManifest Read(string path) =>
        Json.TryRead<ReleaseManifest>(File.ReadAllText(path), out var problem)
        ?? throw new DeployException($"{path} is not a release manifest ({problem})");

    public string ToJson() => JsonSerializer.Serialize(this, Json.Options);
}

/// <summary>
/// sha256 of every regular file of a release (relative path -> hash), so a fleet host can tell which content it
/// already has: the release's content index (Staging/ContentIndex, written by every deploy before its switch),
/// computed once for a release that has none.
/// </summary>
public static class ReleaseHashes
{
    public static IReadOnlyDictionary<string, string> Of(RootLayout layout, ReleaseId id)
    {
        if (ContentIndex.Load(layout, id) is { } saved) return saved;
        var hashes = ContentIndex.Compute(layout.ReleaseDir(id));
        if (Directory.Exists(layout.ReleaseDir(id))) ContentIndex.Save(layout, id, hashes);
        return hashes;
    }
}

/// <summary>
/// The artifact a fleet host stages from: the manifest the deployer uploaded, with each file's content taken from
/// the upload directory (sent this time) or from a release already on the host with the same hash (not sent). Each
/// entry carries its sha256, so the stager links content the host already holds and checks what it copies.
/// </summary>
public sealed class ManifestArtifact(ReleaseManifest manifest, string uploadDir, string? previousDir, IReadOnlyDictionary<string, string> previousHashes) : IArtifactSource
{
    private readonly Dictionary<string, string> _byHash = previousHashes
        .GroupBy(p => p.Value, StringComparer.Ordinal)
        .ToDictionary(g => g.Key, g => g.First().Key, StringComparer.Ordinal);

    public string Description => manifest.Description;

    public IEnumerable<ArtifactEntry> Entries(CancellationToken cancellationToken)
    {
        foreach (var e in manifest.Entries)
        {
            cancellationToken.ThrowIfCancellationRequested();
            // The manifest crossed the network: the same checks as an archive's members.
            if (ArtifactPaths.Normalize(e.Path, manifest.Description) != e.Path)
                throw new ArtifactException($"{manifest.Description}: entry '{e.Path}' is not a clean relative path");
            if (e.Kind == "symlink") ArtifactPaths.CheckSymlink(e.Path, e.Target ?? "", manifest.Description);
            var entry = new ArtifactEntry
            {
                Path = e.Path,
                Kind = e.Kind switch
                {
                    "dir" => EntryKind.Directory,
                    "symlink" => EntryKind.Symlink,
                    "hardlink" => EntryKind.HardLink,
                    "file" => EntryKind.File,
                    _ => throw new ArtifactException($"{manifest.Description}: entry '{e.Path}' has unknown kind '{e.Kind}'"),
                },
                Mode = (UnixFileMode)e.Mode,
                ModifiedUtc = DateTime.SpecifyKind(e.Mtime, DateTimeKind.Utc),
                Size = e.Size,
                LinkTarget = e.Target,
            };
            if (entry.Kind == EntryKind.File) entry = WithContent(entry, e.Sha256 ?? throw new ArtifactException($"{manifest.Description}: file '{e.Path}' has no sha256"));
            yield return entry;
        }
    }

    private ArtifactEntry WithContent(ArtifactEntry entry, string sha)
    {
        var sameOnHost = previousDir is not null && _byHash.TryGetValue(sha, out var path) ? Path.Combine(previousDir, path) : null;
        var uploaded = Path.Combine(uploadDir, sha);
        if (File.Exists(uploaded)) return entry with { SourcePath = uploaded, Sha256 = sha };
        if (sameOnHost is not null && File.Exists(sameOnHost)) return entry with { SourcePath = sameOnHost, Sha256 = sha };
        throw new ArtifactException($"{manifest.Description}: the content of '{entry.Path}' (sha256 {sha[..12]}) was neither sent nor found in the previous release");
    }
}
