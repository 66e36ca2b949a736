namespace Cutover.Doctor;

/// <summary>Free space for two more releases the size of the live one (a deploy and a rollback's spare).</summary>
public sealed class DiskSpaceCheck(string root) : IDoctorCheck
{
    public string Name => "disk";

    public Task<DoctorFinding> RunAsync(CancellationToken cancellationToken)
    {
        var existing = root;
        while (!Directory.Exists(existing)) existing = Path.GetDirectoryName(existing) ?? "/";
        var free = new DriveInfo(existing).AvailableFreeSpace;
        var current = Path.Combine(root, "current");
        var release = Directory.Exists(current) ? new DirectoryInfo(current).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? current : null;
        if (release is null) return Task.FromResult(DoctorFinding.Ok(Name, $"{Mb(free)} free; nothing deployed yet to size a release by"));
        long size = 0;
        foreach (var file in new DirectoryInfo(release).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint }))
        {
            cancellationToken.ThrowIfCancellationRequested();
            size += file.Length;
        }
        return Task.FromResult(free >= 2 * size
            ? DoctorFinding.Ok(Name, $"{Mb(free)} free, room for two more releases of {Mb(size)}")
            : DoctorFinding.Warning(Name, $"{Mb(free)} free, less than two releases of {Mb(size)} (hard links may save some of it)",
                "free space on that filesystem or lower keep_releases"));
    }

    private static string Mb(long bytes) => $"{bytes / (1024.0 * 1024):0.#} MB";
}
