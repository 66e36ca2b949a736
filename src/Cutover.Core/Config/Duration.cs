using System.Globalization;
using System.Text.RegularExpressions;

namespace Cutover.Config;

/// <summary>Durations as users write them: <c>500ms</c>, <c>2s</c>, <c>10m</c>, <c>1h30m</c>.</summary>
public static partial class Duration
{
    [GeneratedRegex(@"^(\d+(?:\.\d+)?)(ms|s|m|h)", RegexOptions.CultureInvariant)]
    private static partial Regex Part();

    /// <summary>
    /// The longest duration Cutover accepts: 49 days. Timers, Task.Delay and CancelAfter take at most
    /// 2^32-2 ms (about 49.7 days); anything longer would throw where it is used, long after the config loaded.
    /// </summary>
    public static readonly TimeSpan Max = TimeSpan.FromDays(49);

    public static bool TryParse(string text, out TimeSpan value, out string? error)
    {
        value = TimeSpan.Zero;
        error = null;
        var rest = text.Trim();
        if (rest.Length == 0)
        {
            error = "empty duration";
            return false;
        }
        if (decimal.TryParse(rest, NumberStyles.Number, CultureInfo.InvariantCulture, out _))
        {
            error = $"'{text}' has no unit; write it as {rest}s, {rest}ms, {rest}m or {rest}h";
            return false;
        }
        var total = 0.0;
        while (rest.Length > 0)
        {
            var m = Part().Match(rest);
            if (!m.Success)
            {
                error = $"'{text}' is not a duration; use a number with ms, s, m or h (for example 500ms, 2s, 1m30s)";
                return false;
            }
            var n = double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
            total += m.Groups[2].Value switch
            {
                "ms" => n,
                "s" => n * 1000,
                "m" => n * 60_000,
                _ => n * 3_600_000,
            };
            rest = rest[m.Length..];
        }
        // Checked before the conversion: TimeSpan.FromMilliseconds throws on what does not fit.
        if (!(total <= Max.TotalMilliseconds))
        {
            error = $"'{text}' is too long; a duration may be at most {Format(Max)} (49 days)";
            return false;
        }
        value = TimeSpan.FromMilliseconds(total);
        return true;
    }

    public static TimeSpan Parse(string text) =>
        TryParse(text, out var v, out var error) ? v : throw new FormatException(error);

    /// <summary>The shortest form that parses back to the same value.</summary>
    public static string Format(TimeSpan value)
    {
        if (value.TotalMilliseconds % 3_600_000 == 0 && value.TotalHours >= 1) return $"{(long)value.TotalHours}h";
        if (value.TotalMilliseconds % 60_000 == 0 && value.TotalMinutes >= 1) return $"{(long)value.TotalMinutes}m";
        if (value.TotalMilliseconds % 1000 == 0) return $"{(long)value.TotalSeconds}s";
        return $"{(long)value.TotalMilliseconds}ms";
    }
}
