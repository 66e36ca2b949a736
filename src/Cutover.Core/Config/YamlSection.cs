using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Cutover.Config;

/// <summary>
/// A mapping in the config file, read key by key with its position kept, so every error names file, line,
/// column and the full key. Keys nobody asked for are reported by <see cref="RejectUnknownKeys"/> with the
/// nearest known key as a suggestion.
/// </summary>
public sealed class YamlSection
{
    private readonly YamlMappingNode _node;
    private readonly string _file;
    private readonly string _path;
    private readonly List<ConfigError> _errors;
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);
    private readonly ConfigSources? _sources;

    /// <param name="sources">With layered files (-c given more than once): which file each node came from, so errors name it.</param>
    public YamlSection(YamlMappingNode node, string file, string path, List<ConfigError> errors, ConfigSources? sources = null)
    {
        _node = node;
        _file = sources?.FileOf(node) ?? file;
        _path = path;
        _errors = errors;
        _sources = sources;
    }

    public Mark Start => _node.Start;

    /// <summary>Where errors go, for readers that build sections of their own (a list of mappings).</summary>
    internal List<ConfigError> Errors => _errors;

    /// <summary>The config file this section comes from.</summary>
    public string File => _file;

    /// <summary>Where each node came from when files were layered; null for one file.</summary>
    internal ConfigSources? Sources => _sources;

    /// <summary>The file the key's value came from (layers: the last file that set it), for paths relative to it.</summary>
    public string FileOf(string key) => Find(key) is { } pair ? _sources?.FileOf(pair.Value) ?? _file : _file;

    /// <summary>The value node of a key, for errors that point at it later.</summary>
    public YamlNode? NodeOf(string key) => Find(key)?.Value;

    public string KeyPath(string key) => _path.Length == 0 ? key : $"{_path}.{key}";

    public bool Has(string key)
    {
        _known.Add(key);
        return Find(key) is not null;
    }

    public void Error(string key, string message) => Error(Find(key)?.Value ?? _node, key, message);

    /// <summary>An error at the key itself (not its value, which for a section starts on the next line).</summary>
    public void KeyError(string key, string message) => Error(Find(key)?.Key ?? _node, key, message);

    public void Error(YamlNode at, string key, string message) =>
        _errors.Add(new ConfigError(_sources?.FileOf(at) ?? _file, (int)at.Start.Line, (int)at.Start.Column, KeyPath(key), message));

    public string? String(string key, string? fallback = null)
    {
        var scalar = Scalar(key);
        return scalar is null ? fallback : scalar.Value;
    }

    public string RequiredString(string key)
    {
        var value = String(key);
        if (string.IsNullOrWhiteSpace(value))
        {
            Error(key, $"'{key}' is required");
            return "";
        }
        return value;
    }

    public int Int(string key, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        var scalar = Scalar(key);
        if (scalar is null) return fallback;
        if (!int.TryParse(scalar.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            Error(scalar, key, $"'{scalar.Value}' is not a whole number");
            return fallback;
        }
        if (value < min || value > max)
        {
            Error(scalar, key, max == int.MaxValue ? $"must be at least {min}, got {value}" : $"must be between {min} and {max}, got {value}");
            return fallback;
        }
        return value;
    }

    public TimeSpan Duration(string key, TimeSpan fallback, TimeSpan? min = null)
    {
        var scalar = Scalar(key);
        if (scalar is null) return fallback;
        if (!Config.Duration.TryParse(scalar.Value ?? "", out var value, out var error))
        {
            Error(scalar, key, error!);
            return fallback;
        }
        if (min is { } floor && value < floor)
        {
            Error(scalar, key, $"must be at least {Config.Duration.Format(floor)}, got {scalar.Value}");
            return fallback;
        }
        return value;
    }

    public long Size(string key, long fallback)
    {
        var scalar = Scalar(key);
        if (scalar is null) return fallback;
        if (!ByteSize.TryParse(scalar.Value ?? "", out var value, out var error))
        {
            Error(scalar, key, error!);
            return fallback;
        }
        return value;
    }

    /// <summary>A list of strings; each item keeps its own node so later checks can point at the exact entry.</summary>
    public IReadOnlyList<YamlScalarNode> StringList(string key)
    {
        _known.Add(key);
        var value = Find(key)?.Value;
        switch (value)
        {
            case null:
                return [];
            case YamlScalarNode { Value: null or "" or "~" or "null" }:
                return [];
            case YamlSequenceNode sequence:
                var items = new List<YamlScalarNode>();
                foreach (var item in sequence)
                {
                    if (item is YamlScalarNode s && !string.IsNullOrEmpty(s.Value)) items.Add(s);
                    else Error(item, key, "each entry must be a non-empty string");
                }
                return items;
            default:
                Error(value, key, "must be a list, for example [a, b]");
                return [];
        }
    }

    /// <summary>A value written either as one string or as a list of strings (compose's healthcheck.test, command).</summary>
    public (bool IsList, IReadOnlyList<string> Values)? StringOrList(string key)
    {
        _known.Add(key);
        var value = Find(key)?.Value;
        if (value is null or YamlScalarNode { Value: null or "" or "~" or "null" }) return null;
        if (value is YamlScalarNode scalar) return (false, [scalar.Value!]);
        return (true, StringList(key).Select(n => n.Value!).ToList());
    }

    /// <summary>Each key of this section with its value as a section (for maps of named things, like compose services).</summary>
    public IEnumerable<string> Keys => _node.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value!).Where(k => k is not null);

    /// <summary>A list of plain values or a mapping of names to values (compose's environment takes both).</summary>
    public IReadOnlyDictionary<string, string> EnvironmentMap(string key)
    {
        _known.Add(key);
        if (Find(key)?.Value is YamlSequenceNode)
        {
            var map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var item in StringList(key))
            {
                var at = item.Value!.IndexOf('=');
                if (at <= 0) Error(item, key, $"'{item.Value}' is not NAME=value");
                else map[item.Value[..at]] = item.Value[(at + 1)..];
            }
            return map;
        }
        return StringMap(key);
    }

    /// <summary>compose's ports: "8080:3000", "8080:3000/tcp", or {target, published, mode}.</summary>
    internal IReadOnlyList<SwarmPort> PortEntries(string key)
    {
        _known.Add(key);
        var ports = new List<SwarmPort>();
        if (Find(key)?.Value is not YamlSequenceNode sequence) return ports;
        foreach (var item in sequence)
        {
            if (item is YamlScalarNode scalar)
            {
                var text = (scalar.Value ?? "").Split('/')[0];
                var parts = text.Split(':');
                if (parts.Length >= 2 && int.TryParse(parts[^2], out var published) && int.TryParse(parts[^1], out var target))
                    ports.Add(new SwarmPort(published, target, "ingress"));
                else if (parts.Length == 1 && int.TryParse(parts[0], out var only))
                    ports.Add(new SwarmPort(0, only, "ingress"));
                else Error(scalar, key, $"'{scalar.Value}' is not PUBLISHED:TARGET");
            }
            else if (item is YamlMappingNode mapping)
            {
                var entry = new YamlSection(mapping, _file, KeyPath(key), _errors, _sources);
                ports.Add(new SwarmPort(entry.Int("published", 0), entry.Int("target", 0, min: 1, max: 65535), entry.Choice("mode", "ingress", ("ingress", "ingress"), ("host", "host"))));
            }
        }
        return ports;
    }

    /// <summary>The items of a list, whatever they are (strings or mappings); null when the key is absent.</summary>
    public IReadOnlyList<YamlNode>? Sequence(string key)
    {
        _known.Add(key);
        var value = Find(key)?.Value;
        switch (value)
        {
            case null:
            case YamlScalarNode { Style: ScalarStyle.Plain, Value: "~" or "null" or "" }:
                return null;
            case YamlSequenceNode sequence:
                return sequence.Children.ToList();
            default:
                Error(value, key, "must be a list");
                return [];
        }
    }

    /// <summary>A mapping of names to plain values, such as an environment.</summary>
    public IReadOnlyDictionary<string, string> StringMap(string key)
    {
        var section = Section(key);
        if (section is null) return new Dictionary<string, string>();
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in section._node.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            if (v is YamlScalarNode scalar) map[name] = scalar.Value ?? "";
            else section.Error(v, name, "must be a plain value");
        }
        return map;
    }

    /// <summary>One of a fixed set of words, such as http | tcp | notify | message.</summary>
    public T Choice<T>(string key, T fallback, params (string Word, T Value)[] choices)
    {
        var scalar = Scalar(key);
        if (scalar is null) return fallback;
        foreach (var (word, value) in choices)
            if (string.Equals(word, scalar.Value, StringComparison.Ordinal)) return value;
        var suggestion = KeySuggester.Suggest(scalar.Value ?? "", choices.Select(c => c.Word));
        Error(scalar, key, $"'{scalar.Value}' is not one of {string.Join(" | ", choices.Select(c => c.Word))}" +
                           (suggestion is null ? "" : $"; did you mean '{suggestion}'?"));
        return fallback;
    }

    /// <summary>True when the key holds a mapping (for keys that take either a word or a section).</summary>
    public bool IsMapping(string key)
    {
        _known.Add(key);
        return Find(key)?.Value is YamlMappingNode;
    }

    public YamlSection? Section(string key)
    {
        _known.Add(key);
        var value = Find(key)?.Value;
        switch (value)
        {
            case null:
            case YamlScalarNode { Value: null or "" or "~" or "null" }:
                return null;
            case YamlMappingNode mapping:
                return new YamlSection(mapping, _file, KeyPath(key), _errors, _sources);
            default:
                Error(value, key, "must be a mapping of keys to values");
                return null;
        }
    }

    /// <summary>Reports every key that no reader asked for, with a suggestion when one is close.</summary>
    public void RejectUnknownKeys()
    {
        foreach (var (keyNode, _) in _node.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? keyNode.ToString();
            if (_known.Contains(key)) continue;
            var suggestion = KeySuggester.Suggest(key, _known);
            var where = _path.Length == 0 ? "at the top level" : $"in '{_path}'";
            var message = suggestion is null
                ? $"unknown key {where}; known keys: {string.Join(", ", _known.Order(StringComparer.Ordinal))}"
                : $"unknown key {where}; did you mean '{suggestion}'?";
            Error(keyNode, key, message);
        }
    }

    private YamlScalarNode? Scalar(string key)
    {
        _known.Add(key);
        var value = Find(key)?.Value;
        switch (value)
        {
            case null:
                return null;
            case YamlScalarNode { Style: ScalarStyle.Plain, Value: "~" or "null" or "" }:
                return null;
            case YamlScalarNode scalar:
                return scalar;
            default:
                Error(value, key, "must be a single value, not a list or mapping");
                return null;
        }
    }

    private KeyValuePair<YamlNode, YamlNode>? Find(string key)
    {
        foreach (var pair in _node.Children)
            if (pair.Key is YamlScalarNode s && s.Value == key)
                return pair;
        return null;
    }
}
