using System.Text.Json;
using Cutover.Platform;

namespace Cutover.Releases;

/// <summary>
/// The releases of one root: their directories and their records. A release exists only when both do
/// (the lesson of Deployer's releases_log), so stray directories are never listed, switched to or deleted.
/// </summary>
/// <param name="redactor">The app's secrets, kept out of every record written (a failure's text may quote a hook or the app).</param>
public sealed class ReleaseStore(RootLayout layout, Config.Redactor? redactor = null)
{
    private const string TrashPrefix = ".trash-";

    public RootLayout Layout => layout;

    /// <summary>
    /// Creates the root's skeleton, or explains why the root cannot be used: a file, or a non-empty directory
    /// Cutover did not create (no .cutover/) unless <paramref name="adoptRoot"/> (bad input, exit 2); a root
    /// whose directories cannot be written (exit 1). Every directory a deploy writes into is probed here,
    /// before the lock and the release record, so a refusal leaves nothing behind.
    /// </summary>
    public void EnsureLayout(bool adoptRoot = false)
    {
        if (File.Exists(layout.Root))
            throw new InputException($"the root {layout.Root} is a file, not a directory; point root: at a directory (Cutover creates it when it is missing)");
        try
        {
            if (!adoptRoot && !Directory.Exists(layout.State) && ForeignEntries() is { Count: > 0 } foreign)
                throw new InputException(
                    $"the root {layout.Root} is not empty and Cutover did not create it (it has no .cutover/, and holds {string.Join(", ", foreign)}); " +
                    "deploy into a new or empty directory, or pass --adopt-root to add releases/, shared/, current and .cutover/ beside what is there");
            foreach (var dir in new[] { layout.Root, layout.Releases, layout.Shared, layout.State, layout.Records, layout.Logs })
                Directory.CreateDirectory(dir);
            foreach (var dir in new[] { layout.Root, layout.State, layout.Releases, layout.Records })
            {
                var probe = Path.Combine(dir, $".write-test.{Environment.ProcessId}");
                File.WriteAllText(probe, "");
                File.Delete(probe);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DeployException($"the root {layout.Root} cannot be written: {e.Message}");
        }
    }

    /// <summary>
    /// What a root Cutover has not used yet holds besides shared/ (filled by hand before a first deploy, as shared
    /// files that no release carries must be); the first few names, for the message.
    /// </summary>
    private List<string> ForeignEntries() =>
        !Directory.Exists(layout.Root)
            ? []
            : Directory.EnumerateFileSystemEntries(layout.Root).Select(Path.GetFileName).OfType<string>()
                .Where(name => name != Path.GetFileName(layout.Shared)).Order(StringComparer.Ordinal).Take(3).ToList();

    public bool Exists => Directory.Exists(layout.Records);

    /// <summary>All releases, oldest first; one whose record cannot be read is listed as <see cref="ReleaseStatus.Unreadable"/>.</summary>
    public IReadOnlyList<ReleaseRecord> List()
    {
        if (!Directory.Exists(layout.Records)) return [];
        var records = new List<ReleaseRecord>();
        foreach (var file in Directory.EnumerateFiles(layout.Records, "*.json"))
        {
            if (!ReleaseId.TryParse(Path.GetFileNameWithoutExtension(file), out var id)) continue;
            if (!Directory.Exists(layout.ReleaseDir(id))) continue;
            records.Add(Load(file, id));
        }
        return records.OrderBy(r => r.ReleaseId).ToList();
    }

    /// <summary>A release whose record can be read and updated; null when it does not exist or its record is unreadable.</summary>
    public ReleaseRecord? Find(ReleaseId id) => Describe(id) is { Status: not ReleaseStatus.Unreadable } record ? record : null;

    /// <summary>A release as <see cref="List"/> shows it, an unreadable record included; null when it does not exist.</summary>
    public ReleaseRecord? Describe(ReleaseId id)
    {
        var file = layout.RecordFile(id);
        return File.Exists(file) && Directory.Exists(layout.ReleaseDir(id)) ? Load(file, id) : null;
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
        AtomicFile.WriteAllText(layout.RecordFile(record.ReleaseId), (redactor ?? Config.Redactor.None).Redact(Json.Write(record, Json.Options)));

    public ReleaseRecord SetStatus(ReleaseRecord record, ReleaseStatus status, string? failure = null)
    {
        if (record.Status == ReleaseStatus.Unreadable)
            throw new InvalidOperationException($"release {record.Id}: an unreadable record is never overwritten");
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
        // .cutover/env/ exists only once a release had an environment (File.Delete throws for a missing directory).
        if (File.Exists(layout.EnvFile(id))) File.Delete(layout.EnvFile(id));
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
            if (!Directory.Exists(layout.ReleaseDir(id)))
            {
                // A record whose directory is gone (a crash between the two) describes nothing, nor does its env file.
                File.Delete(file);
                if (File.Exists(layout.EnvFile(id))) File.Delete(layout.EnvFile(id));
                continue;
            }
            // An unreadable record is left as it is: records are renamed into place, so a crash cannot have cut it
            // short, and what it said (maybe "active") is not something to guess.
            var record = Load(file, id);
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

    /// <summary>The record in <paramref name="file"/>, or one of status Unreadable that says why it cannot be read.</summary>
    private ReleaseRecord Load(string file, ReleaseId id)
    {
        string problem;
        try
        {
            var record = Json.Read<ReleaseRecord>(File.ReadAllText(file), Json.Options);
            if (record is not null && record.Id == id.Value) return record;
            problem = record is null ? "it holds null" : $"it names release '{record.Id}'";
        }
        catch (JsonException e)
        {
            problem = e.Message;
        }
        return new ReleaseRecord
        {
            Id = id.Value,
            Created = id.Time,
            Status = ReleaseStatus.Unreadable,
            Failure = $"its record {Path.GetRelativePath(layout.Root, file)} is unreadable: {problem}",
        };
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
