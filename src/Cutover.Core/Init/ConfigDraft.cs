using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Cutover.Init;

/// <summary>A value written as is (numbers, booleans, `max`), not quoted.</summary>
public sealed record RawScalar(string Text);

/// <summary>
/// A cutover.yml being drafted by `cutover init`: an ordered mapping whose entries carry their comment, rendered as
/// commented YAML. Kept as a tree (not text) so a later step (--strategy) can take whole sections out.
/// Values are string (quoted when YAML would read it as something else), <see cref="RawScalar"/>,
/// a list of strings, a nested <see cref="ConfigDraft"/>, or a list of flat ConfigDrafts.
/// </summary>
public sealed partial class ConfigDraft
{
    private readonly List<(string Key, object Value, string? Comment)> _entries = [];

    /// <summary>Lines written above the first key (the header of the file).</summary>
    public List<string> Header { get; } = [];

    /// <summary>Lines written at the end of the mapping (e.g. the fields an import could not map).</summary>
    public List<string> Footer { get; } = [];

    public IEnumerable<string> Keys => _entries.Select(e => e.Key);

    public object? this[string key] => _entries.FirstOrDefault(e => e.Key == key).Value;

    public ConfigDraft Set(string key, object value, string? comment = null)
    {
        var index = _entries.FindIndex(e => e.Key == key);
        if (index >= 0) _entries[index] = (key, value, comment ?? _entries[index].Comment);
        else _entries.Add((key, value, comment));
        return this;
    }

    /// <summary>The nested mapping under <paramref name="key"/>, created (empty) when missing.</summary>
    public ConfigDraft Map(string key, string? comment = null)
    {
        if (this[key] is ConfigDraft existing) return existing;
        var created = new ConfigDraft();
        Set(key, created, comment);
        return created;
    }

    public bool Remove(string key) => _entries.RemoveAll(e => e.Key == key) > 0;

    public string Render()
    {
        var text = new StringBuilder();
        foreach (var line in Header) text.Append("# ").AppendLine(line).Replace("# \n", "#\n");
        Write(text, 0);
        return text.ToString();
    }

    private void Write(StringBuilder text, int indent)
    {
        var pad = new string(' ', indent);
        foreach (var (key, value, comment) in _entries)
        {
            if (comment is not null && value is ConfigDraft)
                foreach (var line in comment.Split('\n')) text.Append(pad).Append("# ").AppendLine(line);
            var head = $"{pad}{Scalar(key)}:";
            switch (value)
            {
                case ConfigDraft map when map._entries.Count == 0:
                    text.Append(head).AppendLine(" {}");
                    break;
                case ConfigDraft map:
                    text.AppendLine(head);
                    map.Write(text, indent + 2);
                    break;
                case IEnumerable<ConfigDraft> items:
                    // A list of small mappings (hosts): one flow mapping per line.
                    text.AppendLine(head);
                    foreach (var item in items)
                        text.Append(pad).Append("  - { ").AppendJoin(", ", item._entries.Select(e => $"{Scalar(e.Key)}: {Inline(e.Value)}")).AppendLine(" }");
                    break;
                default:
                    var line = $"{head} {Inline(value)}";
                    text.Append(comment is null ? line : $"{line.PadRight(40)} # {comment}").AppendLine();
                    break;
            }
        }
        foreach (var line in Footer) text.Append(pad).Append("# ").AppendLine(line);
    }

    private static string Inline(object value) => value switch
    {
        RawScalar raw => raw.Text,
        string s => Scalar(s),
        IEnumerable<string> list => "[" + string.Join(", ", list.Select(Scalar)) + "]",
        _ => throw new ArgumentException($"a draft value is a string, RawScalar, list or ConfigDraft, not {value.GetType().Name}"),
    };

    /// <summary>Plain when YAML reads it back as the same string; otherwise double-quoted (JSON escapes are YAML's).</summary>
    public static string Scalar(string value) =>
        PlainSafe().IsMatch(value) && !LooksTyped().IsMatch(value) ? value : JsonSerializer.Serialize(value);

    [GeneratedRegex(@"^[A-Za-z0-9_/.][A-Za-z0-9_/.:@+-]*$")]
    private static partial Regex PlainSafe();

    // Words and numbers YAML 1.1 would read as booleans, nulls or numbers; quoted so the reader sees a string.
    [GeneratedRegex(@"^(?i:true|false|yes|no|on|off|null|~|y|n)$|^[0-9.+-]+$")]
    private static partial Regex LooksTyped();
}
