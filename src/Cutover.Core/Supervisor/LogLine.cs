using System.Globalization;

namespace Cutover.Supervisor;

/// <summary>
/// One line of an instance log as <see cref="LogSink"/> writes it: "time instance pid stream text". Its time is
/// what `cutover logs` filters by (--since) and merges hosts by; <see cref="Raw"/> is the line as written.
/// </summary>
public sealed record LogLine(DateTimeOffset? Time, string? Instance, string? Stream, string Text, string Raw)
{
    public static LogLine Parse(string raw)
    {
        var parts = raw.Split(' ', 5);
        if (parts.Length == 5 && DateTimeOffset.TryParseExact(parts[0], "yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time))
            return new LogLine(time, parts[1], parts[3], parts[4], raw);
        // Not ours (a line an older build wrote, or one cut by a crash): kept whole, without a time.
        return new LogLine(null, null, null, raw, raw);
    }
}

/// <summary>What `cutover logs` keeps: one instance, lines since a time, lines containing a text. All must hold.</summary>
public sealed record LogFilter(string? Instance = null, DateTimeOffset? Since = null, string? Grep = null)
{
    public bool Keeps(LogLine line) =>
        (Instance is null || line.Instance == Instance)
        // A line without a time cannot be placed after --since: left out rather than shown as if recent.
        && (Since is null || line.Time >= Since)
        && (Grep is null || line.Text.Contains(Grep, StringComparison.Ordinal));
}
