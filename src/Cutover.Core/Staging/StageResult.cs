namespace Cutover.Staging;

/// <summary>What staging wrote: <see cref="LinkedFiles"/> share an inode with the previous release.</summary>
public sealed record StageResult(int Files, int Directories, int Symlinks, int LinkedFiles, int CopiedFiles, long CopiedBytes);
