using System.Runtime.CompilerServices;

namespace Cutover.Supervisor;

/// <summary>Reads an app's log directory: recent lines across rotated files, and a follow that survives rotation.</summary>
public sealed class LogTail(string dir)
{
    private string Current => Path.Combine(dir, LogSink.CurrentName);

    /// <summary>For tests: runs when a follow has read everything there is and is about to look for a rotation, the
    /// moment a rotation can fall in unseen.</summary>
    internal Action? CaughtUp { get; init; }

    /// <summary>Where a read of current.log stopped: a follow from here misses and repeats nothing.</summary>
    public sealed record LogEnd(ulong Inode, long Offset);

    /// <summary>
    /// The last <paramref name="count"/> lines <paramref name="filter"/> keeps (null: all of them), oldest first, and
    /// <paramref name="end"/>: the end of the last whole line read from current.log (null when there is none).
    /// </summary>
    public IReadOnlyList<LogLine> RecentLines(int? count, LogFilter filter, out LogEnd? end)
    {
        end = null;
        var lines = new Queue<LogLine>();
        void Add(string raw)
        {
            var line = LogLine.Parse(raw);
            if (!filter.Keeps(line)) return;
            lines.Enqueue(line);
            if (lines.Count > count) lines.Dequeue();
        }
        if (!Directory.Exists(dir)) return [];
        foreach (var file in RotatedFiles())
        foreach (var raw in ReadShared(file))
            Add(raw);
        if (OpenCurrent() is { } stream)
        {
            using var _ = stream;
            var inode = Platform.LibC.Inode(stream.SafeFileHandle);
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var bytes = copy.GetBuffer().AsSpan(0, (int)copy.Length);
            // Whole lines only: a line being written now is the follow's, read once it is complete.
            var whole = bytes.LastIndexOf((byte)'\n') + 1;
            foreach (var raw in System.Text.Encoding.UTF8.GetString(bytes[..whole]).Split('\n')[..^1]) Add(raw);
            end = new LogEnd(inode, whole);
        }
        return lines.ToList();
    }

    /// <summary>New lines <paramref name="filter"/> keeps, as they are written: from <paramref name="from"/> (what
    /// <see cref="RecentLines"/> read up to), else from the end of current.log as it is now.</summary>
    public async IAsyncEnumerable<LogLine> FollowLinesAsync(LogFilter filter, [EnumeratorCancellation] CancellationToken cancellationToken, LogEnd? from = null)
    {
        await foreach (var raw in Follow(from, cancellationToken))
        {
            var line = LogLine.Parse(raw);
            if (filter.Keeps(line)) yield return line;
        }
    }

    public IReadOnlyList<string> Recent(int count, string? filter)
    {
        if (!Directory.Exists(dir)) return [];
        var files = RotatedFiles().Append(Current).Where(File.Exists);
        var lines = new Queue<string>();
        foreach (var file in files)
        foreach (var line in ReadShared(file))
        {
            if (filter is not null && !line.Contains(filter, StringComparison.Ordinal)) continue;
            lines.Enqueue(line);
            if (lines.Count > count) lines.Dequeue();
        }
        return lines.ToList();
    }

    /// <summary>
    /// New lines as they are written. On rotation (current.log renamed away and a new one opened) the old file
    /// is read to its end first, then any files rotated after it in the meantime, then the new one from its start, so
    /// no line is lost or repeated.
    /// </summary>
    public async IAsyncEnumerable<string> FollowAsync(string? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var line in Follow(null, cancellationToken))
            if (filter is null || line.Contains(filter, StringComparison.Ordinal)) yield return line;
    }

    private async IAsyncEnumerable<string> Follow(LogEnd? from, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        FileStream? stream = null;
        ulong inode = 0;
        var pending = "";
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                if (stream is null && OpenCurrent() is { } opened)
                {
                    stream = opened;
                    inode = Platform.LibC.Inode(stream.SafeFileHandle);
                    // Where the recent lines stopped; a file rotated since is all new; without a start, its end.
                    stream.Position = from is null ? stream.Length : from.Inode == inode ? Math.Min(from.Offset, stream.Length) : 0;
                }
                if (stream is null)
                {
                    await Task.Delay(200, cancellationToken);
                    continue;
                }
                var text = await ReadToEndAsync(stream, cancellationToken);
                if (text.Length > 0)
                {
                    var parts = (pending + text).Split('\n');
                    pending = parts[^1];
                    foreach (var line in parts[..^1]) yield return line;
                    continue;
                }
                CaughtUp?.Invoke();
                if (Platform.LibC.InodeIfExists(Current) is { } now && now != inode && OpenCurrent() is { } next)
                {
                    // Rotated. The writer closes a file before it renames it, so this one is complete now, but lines can
                    // have reached it between the read above and the look at the path: read it to its end again. The new
                    // one starts at 0; its inode is the opened file's own (current.log can be renamed away again between
                    // the open and a look at the path).
                    var rest = pending + await ReadToEndAsync(stream, cancellationToken);
                    pending = "";
                    var previous = inode;
                    await stream.DisposeAsync();
                    stream = next;
                    inode = Platform.LibC.Inode(stream.SafeFileHandle);
                    if (rest.Length > 0)
                    {
                        var parts = rest.Split('\n');
                        foreach (var line in parts[..^1]) yield return line;
                        if (parts[^1].Length > 0) yield return parts[^1]; // a last line without its newline: the file is done
                    }
                    // More than one rotation since the last look: the files in between, whole.
                    foreach (var file in RotatedBetween(previous, inode))
                    foreach (var line in ReadAllIfExists(file))
                        yield return line;
                    continue;
                }
                await Task.Delay(100, cancellationToken);
            }
        }
        finally
        {
            if (stream is not null) await stream.DisposeAsync();
        }
    }

    /// <summary>
    /// The rotated files after the one that was <paramref name="after"/> and before <paramref name="until"/> (the file
    /// current.log named when it was opened; it may have been rotated too by now), oldest first. None when the first is
    /// gone (the retention deleted it): where it stood is not known then.
    /// </summary>
    private IEnumerable<string> RotatedBetween(ulong after, ulong until)
    {
        var rotated = RotatedFiles().Select(f => (File: f, Inode: Platform.LibC.InodeIfExists(f))).ToList();
        var start = rotated.FindIndex(r => r.Inode == after);
        if (start < 0) yield break;
        foreach (var (file, inode) in rotated.Skip(start + 1))
        {
            if (inode == until) yield break;
            if (inode is not null) yield return file;
        }
    }

    /// <summary>The rotated files (every *.log but current.log), oldest first: their names are their rotation times.</summary>
    private IEnumerable<string> RotatedFiles() =>
        Directory.GetFiles(dir, "*.log").Where(f => Path.GetFileName(f) != LogSink.CurrentName).Order();

    /// <summary>A rotated file's lines (empty when the retention has deleted it since).</summary>
    private static IReadOnlyList<string> ReadAllIfExists(string file)
    {
        try
        {
            return ReadShared(file).ToList();
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return [];
        }
    }

    /// <summary>current.log opened for reading, or null when there is none this moment (not yet made, or renamed away by a rotation).</summary>
    private FileStream? OpenCurrent()
    {
        try
        {
            return new FileStream(Current, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    private static async Task<string> ReadToEndAsync(FileStream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[64 * 1024];
        var text = new System.Text.StringBuilder();
        int n;
        while ((n = await stream.ReadAsync(buffer, cancellationToken)) > 0) text.Append(System.Text.Encoding.UTF8.GetString(buffer, 0, n));
        return text.ToString();
    }

    private static IEnumerable<string> ReadShared(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line) yield return line;
    }
}
