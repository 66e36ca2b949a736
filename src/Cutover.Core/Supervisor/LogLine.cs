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

/// <summary>
/// Which instances' lines `cutover logs` keeps: one process type and/or one instance number (null: any), by the
/// instance id each line carries: "app-0" is web's, "app-worker-0" the process type worker's.
/// </summary>
public sealed record InstanceSelection(string App, string? Process = null, int? Number = null)
{
    public bool Keeps(string? instance)
    {
        if (Process is null && Number is null) return true;
        if (instance is null || !instance.StartsWith(App + "-", StringComparison.Ordinal)) return false;
        var rest = instance[(App.Length + 1)..];
        var dash = rest.LastIndexOf('-');
        var (type, number) = dash < 0 ? (Config.ProcessConfigReader.Web, rest) : (rest[..dash], rest[(dash + 1)..]);
        return (Process is null || Process == type)
               && (Number is null || number == Number.Value.ToString(CultureInfo.InvariantCulture));
    }
}

/// <summary>What `cutover logs` keeps: some instances, lines since a time, lines containing a text. All must hold.</summary>
public sealed record LogFilter(InstanceSelection? Instances = null, DateTimeOffset? Since = null, string? Grep = null)
{
    public bool Keeps(LogLine line) =>
        (Instances is null || Instances.Keeps(line.Instance))
        // A line without a time cannot be placed after --since: left out rather than shown as if recent.
        && (Since is null || line.Time >= Since)
        && (Grep is null || line.Text.Contains(Grep, StringComparison.Ordinal));
}
