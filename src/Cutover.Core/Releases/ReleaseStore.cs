using System.Text.Json;
using Cutover.Platform;

namespace Cutover.Releases;

/// <summary>
/// The releases of one root: their directories and their records. A release exists only when both do
/// (the lesson of Deployer's releases_log), so stray directories are never listed, switched to or deleted.
/// </summary>
public sealed class ReleaseStore(RootLayout layout)
{
    private const string TrashPrefix = ".trash-";

    public RootLayout Layout => layout;

    /// <summary>Creates the root's skeleton, or explains why the root cannot be written.</summary>
    public void EnsureLayout()
    {
        try
        {
            foreach (var dir in new[] { layout.Root, layout.Releases, layout.Shared, layout.State, layout.Records, layout.Logs })
                Directory.CreateDirectory(dir);
            var probe = Path.Combine(layout.State, $".write-test.{Environment.ProcessId}");
            File.WriteAllText(probe, "");
            File.Delete(probe);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DeployException($"the root {layout.Root} cannot be written: {e.Message}");
        }
    }

    public bool Exists => Directory.Exists(layout.Records);

    /// <summary>All releases, oldest first.</summary>
    public IReadOnlyList<ReleaseRecord> List()
    {
        if (!Directory.Exists(layout.Records)) return [];
        var records = new List<ReleaseRecord>();
        foreach (var file in Directory.EnumerateFiles(layout.Records, "*.json"))
        {
            if (!ReleaseId.TryParse(Path.GetFileNameWithoutExtension(file), out var id)) continue;
            if (!Directory.Exists(layout.ReleaseDir(id))) continue;
            var record = TryRead(file);
            if (record is not null) records.Add(record);
        }
        return records.OrderBy(r => r.ReleaseId).ToList();
    }

    public ReleaseRecord? Find(ReleaseId id)
    {
        var file = layout.RecordFile(id);
        return File.Exists(file) && Directory.Exists(layout.ReleaseDir(id)) ? TryRead(file) : null;
    }

    /// <summary>Every id in use, including directories without a record, so a new id never collides.</summary>
    public IEnumerable<ReleaseId> AllIds()
    {
        var names = Directory.EnumerateFileSystemEntries(layout.Releases).Select(Path.GetFileName)
            .Concat(Directory.EnumerateFiles(layout.Records, "*.json").Select(Path.GetFileNameWithoutExtension));
        foreach (var name in names)
            if (name is not null && ReleaseId.TryParse(name, out var id))
                yield return id;
    }

    public void Save(ReleaseRecord record) =>
        AtomicFile.WriteAllText(layout.RecordFile(record.ReleaseId), JsonSerializer.Serialize(record, Json.Options));

    public ReleaseRecord SetStatus(ReleaseRecord record, ReleaseStatus status, string? failure = null)
    {
        var updated = record with { Status = status, Failure = failure, Updated = DateTimeOffset.UtcNow };
        Save(updated);
        return updated;
    }

    /// <summary>
    /// Removes a release: first renamed out of releases/ (atomic), then its record, then its files,
    /// so a crash at any point leaves nothing that looks like a release.
    /// </summary>
    public void Remove(ReleaseId id)
    {
        var dir = layout.ReleaseDir(id);
        var trash = Path.Combine(layout.Releases, TrashPrefix + id.Value);
        if (Directory.Exists(dir)) LibC.Rename(dir, trash);
        File.Delete(layout.RecordFile(id));
        File.Delete(layout.LogFile(id));
        File.Delete(layout.ContentIndexFile(id));
        DeleteTree(trash);
    }

    /// <summary>Tidies after a deploy that died: trash half-deleted, staging records marked failed.</summary>
    public IReadOnlyList<ReleaseId> RecoverInterrupted()
    {
        foreach (var trash in Directory.EnumerateDirectories(layout.Releases, TrashPrefix + "*"))
            DeleteTree(trash);
        var interrupted = new List<ReleaseId>();
        foreach (var file in Directory.EnumerateFiles(layout.Records, "*.json"))
        {
            if (!ReleaseId.TryParse(Path.GetFileNameWithoutExtension(file), out var id)) continue;
            var record = TryRead(file);
            if (record is null || !Directory.Exists(layout.ReleaseDir(id)))
            {
                // A record whose directory is gone, or that a crash cut short, describes nothing.
                File.Delete(file);
                continue;
            }
            if (record.Status == ReleaseStatus.Staging)
            {
                SetStatus(record, ReleaseStatus.Failed, "interrupted: the deploy stopped before it finished staging");
                interrupted.Add(id);
            }
        }
        foreach (var temp in Directory.EnumerateFiles(layout.Records, ".*.tmp"))
            File.Delete(temp);
        return interrupted;
    }

    private static ReleaseRecord? TryRead(string file)
    {
        try
        {
            return JsonSerializer.Deserialize<ReleaseRecord>(File.ReadAllText(file), Json.Options);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>rm -rf that does not follow symlinks and copes with read-only directories.</summary>
    internal static void DeleteTree(string path)
    {
        if (!Directory.Exists(path)) return;
        var info = new DirectoryInfo(path);
        if (info.LinkTarget is not null)
        {
            info.Delete();
            return;
        }
        try
        {
            Directory.Delete(path, recursive: true);
        }
        catch (UnauthorizedAccessException)
        {
            foreach (var dir in info.EnumerateDirectories("*", SearchOption.AllDirectories))
                if (dir.LinkTarget is null)
                    dir.UnixFileMode |= UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            info.UnixFileMode |= UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            Directory.Delete(path, recursive: true);
        }
    }
}
