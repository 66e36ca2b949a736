using System.Text;

namespace Cutover.Platform;

/// <summary>Writes a file so that a reader, or a crash, sees either the old content or the new, never half.</summary>
public static class AtomicFile
{
    /// <param name="mode">The file's mode from its creation (secrets: 0600), so it is never readable by others, not
    /// even for the moment between the rename and a chmod; null takes the process umask.</param>
    public static void WriteAllText(string path, string content, UnixFileMode? mode = null) => Write(path, content, mode, durable: true);

    /// <summary>
    /// Replaces the file atomically (a reader sees the old content or the new, never half) but without fsyncs: for a file
    /// whose meaning ends with the process that wrote it, which a crash of the machine makes moot anyway. The deploy
    /// lock's holder is one (the flock it describes goes with the machine too); every command took two fsyncs for it.
    /// </summary>
    public static void Replace(string path, string content) => Write(path, content, mode: null, durable: false);

    /// <summary>
    /// Several files of one directory, each replaced atomically and durably in the order given, with one fsync of the
    /// directory for all of them instead of one each: every file's content is on disk before its rename, so whatever a
    /// crash keeps of the renames, each name holds a whole file, old or new; once this returns, all are new.
    /// </summary>
    public static void WriteAllTexts(string directory, IReadOnlyList<(string Name, string Content)> files)
    {
        foreach (var (name, content) in files) Write(Path.Combine(directory, name), content, mode: null, durable: true, syncDirectory: false);
        LibC.FsyncDirectory(directory);
    }

    private static void Write(string path, string content, UnixFileMode? mode, bool durable, bool syncDirectory = true)
    {
        var dir = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None };
        if (mode is { } m)
        {
            // A temp file left by a crash keeps its old mode on FileMode.Create; it goes first so the mode applies.
            File.Delete(temp);
            options.UnixCreateMode = m;
        }
        using (var stream = new FileStream(temp, options))
        {
            stream.Write(Encoding.UTF8.GetBytes(content));
            stream.Flush(flushToDisk: durable);
        }
        LibC.Rename(temp, path);
        if (durable && syncDirectory) LibC.FsyncDirectory(dir);
    }

    /// <summary>
    /// Appends one line and flushes it to disk; used for the history log. The line always starts a line of its
    /// own: after a crash mid-append left a partial last line, a newline ends that one first, so the damage stays
    /// in one unreadable line instead of swallowing the next entry too.
    /// </summary>
    public static void AppendLine(string path, string line)
    {
        using var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite);
        var endsMidLine = false;
        if (stream.Length > 0)
        {
            stream.Seek(-1, SeekOrigin.End);
            endsMidLine = stream.ReadByte() != '\n';
        }
        stream.Seek(0, SeekOrigin.End);
        stream.Write(Encoding.UTF8.GetBytes((endsMidLine ? "\n" : "") + line + "\n"));
        stream.Flush(flushToDisk: true);
    }
}
