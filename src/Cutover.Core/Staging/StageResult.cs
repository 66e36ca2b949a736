using Cutover.Platform;

namespace Cutover.Staging;

/// <summary>What staging wrote: <see cref="LinkedFiles"/> share an inode with an earlier release.</summary>
public sealed record StageResult(int Files, int Directories, int Symlinks, int LinkedFiles, int CopiedFiles, long CopiedBytes)
{
    /// <summary>Every regular file staged: its sha256 and its statx right after staging.</summary>
    public IReadOnlyDictionary<string, StagedFile> Content { get; init; } = new Dictionary<string, StagedFile>();
}

/// <summary>A file as staging left it: its content hash, and what statx said about it then (private copies only; default otherwise).</summary>
public sealed record StagedFile(string Sha256, FileStatus Status);
