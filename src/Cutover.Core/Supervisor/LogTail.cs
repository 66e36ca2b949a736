using System.Runtime.CompilerServices;

namespace Cutover.Supervisor;

/// <summary>Reads an app's log directory: recent lines across rotated files, and a follow that survives rotation.</summary>
public sealed class LogTail(string dir)
{
    private string Current => Path.Combine(dir, LogSink.CurrentName);

    public IReadOnlyList<string> Recent(int count, string? filter)
    {
        if (!Directory.Exists(dir)) return [];
        var files = Directory.GetFiles(dir, "*.log").Where(f => Path.GetFileName(f) != LogSink.CurrentName).Order().Append(Current).Where(File.Exists);
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

    /// <summary>New lines as they are written; when current.log is renamed away, the new one is opened from its start.</summary>
    public async IAsyncEnumerable<string> FollowAsync(string? filter, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        long position = File.Exists(Current) ? new FileInfo(Current).Length : 0;
        var pending = "";
        while (!cancellationToken.IsCancellationRequested)
        {
            if (File.Exists(Current))
            {
                var length = new FileInfo(Current).Length;
                if (length < position) position = 0; // rotated: a new, shorter file
                if (length > position)
                {
                    using var stream = new FileStream(Current, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                    stream.Position = position;
                    using var reader = new StreamReader(stream);
                    var text = pending + await reader.ReadToEndAsync(cancellationToken);
                    position = stream.Position;
                    var parts = text.Split('\n');
                    pending = parts[^1];
                    foreach (var line in parts[..^1])
                        if (filter is null || line.Contains(filter, StringComparison.Ordinal)) yield return line;
                    continue;
                }
            }
            await Task.Delay(200, cancellationToken);
        }
    }

    private static IEnumerable<string> ReadShared(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        while (reader.ReadLine() is { } line) yield return line;
    }
}
