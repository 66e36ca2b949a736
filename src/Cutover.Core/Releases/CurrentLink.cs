using Cutover.Platform;

namespace Cutover.Releases;

/// <summary>
/// The <c>current</c> symlink. Switching makes a new link under a temporary name and renames it over
/// <c>current</c> (rename(2) is atomic), then fsyncs the root, so <c>current</c> is never missing and never
/// points at anything but a complete release.
/// </summary>
public sealed class CurrentLink(RootLayout layout)
{
    private string TempPath => Path.Combine(layout.Root, $".current.{Environment.ProcessId}.tmp");

    /// <summary>The release <c>current</c> points at, or null when there is none yet.</summary>
    public ReleaseId? Read()
    {
        var info = new FileInfo(layout.Current);
        if (info.LinkTarget is not { } target) return null;
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(target));
        return ReleaseId.TryParse(name, out var id) ? id : null;
    }

    /// <summary>Refuses a root whose <c>current</c> is a real directory or file: it cannot be swapped atomically.</summary>
    public void EnsureSwitchable()
    {
        var info = new FileInfo(layout.Current);
        if (info.LinkTarget is not null) return;
        if (Directory.Exists(layout.Current) || File.Exists(layout.Current))
            throw new InputException(
                $"{layout.Current} is a real {(Directory.Exists(layout.Current) ? "directory" : "file")}, not a symlink; " +
                "move it away (for example into releases/) so Cutover can manage 'current' as a symlink");
    }

    public void SwitchTo(ReleaseId id)
    {
        EnsureSwitchable();
        var temp = TempPath;
        File.Delete(temp);
        File.CreateSymbolicLink(temp, RootLayout.CurrentTarget(id));
        LibC.Rename(temp, layout.Current);
        LibC.FsyncDirectory(layout.Root);
    }

    /// <summary>Removes <c>current</c>; only used to undo the very first deploy, when nothing was live before.</summary>
    public void Remove()
    {
        if (new FileInfo(layout.Current).LinkTarget is not null) File.Delete(layout.Current);
        LibC.FsyncDirectory(layout.Root);
    }

    /// <summary>Deletes temporary links left by a deploy that was killed mid-switch.</summary>
    public void RemoveLeftovers()
    {
        foreach (var leftover in Directory.EnumerateFileSystemEntries(layout.Root, ".current.*.tmp"))
            File.Delete(leftover);
    }
}
