using System.Globalization;
using System.Text;

namespace Cutover.Cli.Output.Top;

/// <summary>One sample of a scrape: a series (name and labels) and its value.</summary>
public sealed record MetricSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value)
{
    /// <summary>The series' identity, the same for the same name and labels in any order: name{a="1",b="2"}.</summary>
    public string Series { get; } = SeriesOf(Name, Labels);

    public string? Label(string name) => Labels.GetValueOrDefault(name);

    private static string SeriesOf(string name, IReadOnlyDictionary<string, string> labels) =>
        labels.Count == 0 ? name : name + "{" + string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}=\"{l.Value}\"")) + "}";
}

/// <summary>
/// Reads the Prometheus text exposition format (version 0.0.4, what the agent's GET /v1/metrics serves) into samples.
/// Hand-written because `cutover top` needs only the samples, not a metrics library: comments (# HELP, # TYPE, # EOF)
/// are skipped, label values unescaped (\\, \", \n), values read as Prometheus writes them (+Inf, -Inf, NaN), a
/// timestamp after the value is allowed and ignored. A line that is none of these is an error naming its number.
/// </summary>
public static class PrometheusTextReader
{
    public static IReadOnlyList<MetricSample> Parse(string text)
    {
        var samples = new List<MetricSample>();
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = raw.TrimEnd('\r');
            if (line.AsSpan().Trim().IsEmpty || line.TrimStart().StartsWith('#')) continue;
            samples.Add(ParseSample(line, number));
        }
        return samples;
    }

    private static MetricSample ParseSample(string line, int number)
    {
        var at = 0;
        SkipBlanks(line, ref at);
        var name = ReadName(line, ref at, metric: true) ?? throw Error(number, "no metric name", line);
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (at < line.Length && line[at] == '{')
        {
            at++;
            while (true)
            {
                SkipBlanks(line, ref at);
                if (at < line.Length && line[at] == '}')
                {
                    at++;
                    break;
                }
                var label = ReadName(line, ref at, metric: false) ?? throw Error(number, "a label name was expected", line);
                SkipBlanks(line, ref at);
                if (at >= line.Length || line[at] != '=') throw Error(number, $"'=' was expected after label {label}", line);
                at++;
                SkipBlanks(line, ref at);
                var value = ReadQuoted(line, ref at) ?? throw Error(number, $"label {label} has no quoted value", line);
                if (!labels.TryAdd(label, value)) throw Error(number, $"label {label} appears twice", line);
                SkipBlanks(line, ref at);
                if (at < line.Length && line[at] == ',')
                {
                    at++;
                    continue;
                }
                if (at < line.Length && line[at] == '}')
                {
                    at++;
                    break;
                }
                throw Error(number, "',' or '}' was expected after a label", line);
            }
        }
        var fields = line[at..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
        // Whitespace separates the name (or labels) from the value; then an optional timestamp in milliseconds.
        if (fields.Length == 0 || (at < line.Length && line[at] is not (' ' or '\t'))) throw Error(number, "a value was expected after the series", line);
        if (fields.Length > 2) throw Error(number, "more than a value and a timestamp after the series", line);
        if (!TryParseValue(fields[0], out var sample)) throw Error(number, $"'{fields[0]}' is not a number", line);
        if (fields.Length == 2 && !long.TryParse(fields[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _))
            throw Error(number, $"'{fields[1]}' is not a timestamp", line);
        return new MetricSample(name, labels, sample);
    }

    /// <summary>As Go's strconv.ParseFloat reads it, which is what Prometheus accepts: Inf and NaN in any case, with a sign.</summary>
    public static bool TryParseValue(string text, out double value)
    {
        switch (text.ToLowerInvariant())
        {
            case "+inf" or "inf":
                value = double.PositiveInfinity;
                return true;
            case "-inf":
                value = double.NegativeInfinity;
                return true;
            case "nan":
                value = double.NaN;
                return true;
        }
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out value);
    }

    private static string? ReadName(string line, ref int at, bool metric)
    {
        var start = at;
        while (at < line.Length && (char.IsAsciiLetter(line[at]) || line[at] == '_' || (metric && line[at] == ':') || (at > start && char.IsAsciiDigit(line[at])))) at++;
        return at == start ? null : line[start..at];
    }

    private static string? ReadQuoted(string line, ref int at)
    {
        if (at >= line.Length || line[at] != '"') return null;
        var value = new StringBuilder();
        for (at++; at < line.Length; at++)
        {
            var c = line[at];
            if (c == '"')
            {
                at++;
                return value.ToString();
            }
            if (c != '\\')
            {
                value.Append(c);
                continue;
            }
            if (++at >= line.Length) return null;
            value.Append(line[at] switch { 'n' => '\n', var other => other });
        }
        return null;
    }

    private static void SkipBlanks(string line, ref int at)
    {
        while (at < line.Length && line[at] is ' ' or '\t') at++;
    }

    private static FormatException Error(int number, string why, string line) =>
        new($"metrics line {number}: {why}: {(line.Length <= 120 ? line : line[..120] + "...")}");
}
