using System.Text;

namespace Cutover.Platform;

/// <summary>Writes a file so that a reader, or a crash, sees either the old content or the new, never half.</summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string content)
    {
        var dir = Path.GetDirectoryName(path)!;
        var temp = Path.Combine(dir, $".{Path.GetFileName(path)}.{Environment.ProcessId}.tmp");
        using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(Encoding.UTF8.GetBytes(content));
            stream.Flush(flushToDisk: true);
        }
        LibC.Rename(temp, path);
        LibC.FsyncDirectory(dir);
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
