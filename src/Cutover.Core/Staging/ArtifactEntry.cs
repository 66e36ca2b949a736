namespace Cutover.Staging;

public enum EntryKind { Directory, File, Symlink, HardLink }

/// <summary>
/// One entry of an artifact, whatever it came from. <see cref="Path"/> is relative, '/'-separated and already
/// checked to stay inside the release. File content comes from <see cref="SourcePath"/> (a directory artifact)
/// or <see cref="OpenContent"/> (a tarball, read once, in order).
/// </summary>
public sealed record ArtifactEntry
{
    public required string Path { get; init; }
    public required EntryKind Kind { get; init; }
    public UnixFileMode Mode { get; init; }
    public DateTime ModifiedUtc { get; init; }
    public long Size { get; init; }
    /// <summary>Symlink target as written in the artifact, or for a hard link the path it links to.</summary>
    public string? LinkTarget { get; init; }
    public string? SourcePath { get; init; }
    public Func<Stream>? OpenContent { get; init; }
    /// <summary>
    /// The content's sha256 when the artifact names it (a fleet manifest): identical content already on this machine
    /// is linked without reading the source, and content read from the source must match it.
    /// </summary>
    public string? Sha256 { get; init; }
}

/// <summary>A directory or an archive that becomes a release.</summary>
public interface IArtifactSource
{
    string Description { get; }
    IEnumerable<ArtifactEntry> Entries(CancellationToken cancellationToken);
    /// <summary>The image a release of this artifact runs (containers, Swarm), recorded with the release; null for files.</summary>
    string? Image => null;
}

/// <summary>The artifact is unsafe or unreadable; nothing in the root was changed because of it.</summary>
public sealed class ArtifactException(string message) : DeployException(message);
