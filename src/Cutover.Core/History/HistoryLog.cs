using System.Text;
using System.Text.Json;
using Cutover.Platform;
using Cutover.Releases;

namespace Cutover.History;

/// <summary>One deploy or rollback, as appended to <c>.cutover/history.jsonl</c>.</summary>
public sealed record HistoryEntry
{
    public required string Action { get; init; }
    public string? Release { get; init; }
    public string? Revision { get; init; }
    public string? From { get; init; }
    /// <summary>Who did it: the OS user, or on a fleet host the deploying user's name as the CLI sent it (the SSH user is not who deployed).</summary>
    public required string User { get; init; }
    /// <summary>The id every host of one fleet deploy (or fleet rollback) shares; null on a root deployed from this machine.</summary>
    public string? FleetDeploy { get; init; }
    public required DateTimeOffset Started { get; init; }
    public required DateTimeOffset Finished { get; init; }
    public required string Outcome { get; init; }
    public string? Error { get; init; }
    /// <summary>A restart that rewrote the release's env file: the variables that changed, by name only (never a value).</summary>
    public IReadOnlyList<string>? EnvironmentChanged { get; init; }
    public IReadOnlyDictionary<string, double> PhaseSeconds { get; init; } = new Dictionary<string, double>();

    /// <summary>How long it took.</summary>
    public double Seconds => Math.Round((Finished - Started).TotalSeconds, 3);
}

/// <summary>The append-only record of everything done to a root.</summary>
/// <param name="redactor">The app's secrets, kept out of the log (an entry's error may quote a hook or the app).</param>
public sealed class HistoryLog(RootLayout layout, Config.Redactor? redactor = null)
{
    public void Append(HistoryEntry entry) =>
        AtomicFile.AppendLine(layout.History, (redactor ?? Config.Redactor.None).Redact(Json.Write(entry, Json.Compact)));

    public IReadOnlyList<HistoryEntry> Read()
    {
        if (!File.Exists(layout.History)) return [];
        var entries = new List<HistoryEntry>();
        foreach (var line in File.ReadLines(layout.History))
            if (TryParse(line) is { } entry) entries.Add(entry);
        return entries;
    }

    /// <summary>
    /// The last entry that reads (what <c>Read().LastOrDefault()</c> returns), read from the end of the file: `status`
    /// shows only the last action, and the log grows with every deploy for the life of the root (issue 14: start-up).
    /// </summary>
    public HistoryEntry? ReadLast()
    {
        if (!File.Exists(layout.History)) return null;
        using var stream = new FileStream(layout.History, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        var length = stream.Length;
        // The tail, doubled until an entry reads in it or it is the whole file. Only lines that start inside the tail
        // are read: the first one of a tail that does not start the file may be a part of a line.
        for (var tail = Math.Min(length, 16 * 1024); ; tail = Math.Min(length, tail * 2))
        {
            var bytes = new byte[tail];
            stream.Seek(length - tail, SeekOrigin.Begin);
            stream.ReadExactly(bytes);
            var lines = Encoding.UTF8.GetString(bytes).Split('\n');
            for (var i = lines.Length - 1; i >= (tail == length ? 0 : 1); i--)
                // File.ReadLines, which Read uses, ends a line at \r too.
                foreach (var line in Enumerable.Reverse(lines[i].Split('\r')))
                    if (TryParse(line) is { } entry) return entry;
            if (tail == length) return null;
        }
    }

    private static HistoryEntry? TryParse(string line)
    {
        if (string.IsNullOrWhiteSpace(line)) return null;
        try
        {
            return Json.Read<HistoryEntry>(line, Json.Compact);
        }
        catch (JsonException)
        {
            // A line cut short by a crash mid-append; the rest of the log still counts.
            return null;
        }
    }
}
