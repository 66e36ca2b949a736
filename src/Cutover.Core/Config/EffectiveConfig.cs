using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json.Nodes;
using YamlDotNet.RepresentationModel;

namespace Cutover.Config;

/// <summary>One value of the effective configuration: its key as cutover.yml spells it, and where it came from.</summary>
/// <param name="Source">"FILE:LINE" of the YAML node that set it, "FILE" for an env_file variable, or "default".</param>
public sealed record EffectiveValue(string Key, JsonNode? Value, string Source);

/// <summary>
/// `cutover config`: the configuration a deploy would use, after defaults and -c layering. The values are read from
/// the typed <see cref="CutoverConfig"/> the loader returns (so a value shown is the value used, after `max`, units
/// and relative paths are resolved); where each came from is looked up in the merged YAML tree (every node keeps its
/// file, see <see cref="ConfigSources"/>), and a key no file sets is a default. Secrets (env_file values, ${VAR}
/// values) are shown as ***.
/// </summary>
public sealed partial record EffectiveConfig
{
    public required IReadOnlyList<string> Files { get; init; }
    /// <summary>False when env_file or a ${VAR} could not be resolved here: env is then shown as written, never failed on.</summary>
    public required bool EnvResolved { get; init; }
    /// <summary>Why env could not be resolved (the loader's messages), when <see cref="EnvResolved"/> is false.</summary>
    public IReadOnlyList<string> Unresolved { get; init; } = [];
    public required IReadOnlyList<EffectiveValue> Values { get; init; }

    // Typed property paths that the YAML spells differently (the typed records group or flatten some sections).
    private static readonly (string Typed, string Yaml)[] Renames =
    [
        ("settings.instance_health.", "health."),
        ("settings.blue_green.router", "router"),
        ("settings.blue_green.nginx.", "nginx."),
        ("settings.blue_green.", "blue_green."),
        ("settings.runtime.", "docker."),
        ("settings.", ""),
        ("fleet.hosts", "hosts"),
        ("fleet.ssh.", "ssh."),
        ("fleet.options.", "fleet."),
    ];

    // Leaves of the typed records that repeat another (a signal's number next to its name) or are not configuration.
    private static readonly HashSet<string> SkippedAtTop = new(StringComparer.Ordinal) { "File", "Files", "Environment", "Warnings" };

    public static EffectiveConfig Build(IReadOnlyList<string> files, Func<string, string?>? lookup = null)
    {
        lookup ??= System.Environment.GetEnvironmentVariable;
        var layered = ConfigLayers.Load(files);
        var sources = new Dictionary<string, string>(StringComparer.Ordinal);
        var yamlEnv = new List<(string Name, string Text, string Source)>();
        Index(layered.Root, "", layered.Sources, sources);
        if (layered.Root.Children.TryGetValue(new YamlScalarNode("env"), out var envNode) && envNode is YamlMappingNode envMap)
            foreach (var (k, v) in envMap.Children)
                yamlEnv.Add((((YamlScalarNode)k).Value!, (v as YamlScalarNode)?.Value ?? "", sources.GetValueOrDefault("env." + ((YamlScalarNode)k).Value, "default")));

        CutoverConfig config;
        var unresolved = new List<string>();
        try
        {
            config = ConfigLoader.Load(files, resolveEnvironment: true, lookup);
        }
        catch (ConfigException resolving)
        {
            // Everything but env must load as it is; only env_file/${VAR} may be out of reach where `config` runs.
            config = ConfigLoader.Load(files, resolveEnvironment: false, lookup);
            unresolved.AddRange(resolving.Errors.Select(e => e.ToString()));
        }
        var redactor = config.Environment.Redactor;
        var values = new List<EffectiveValue>();
        void Add(string key, JsonNode? value, string? source = null) =>
            values.Add(new EffectiveValue(key, Redact(value, redactor), source ?? sources.GetValueOrDefault(key, "default")));

        Add("app", config.App);
        Add("strategy", config.Strategy.Name);
        if (config.Settings is InstanceSettings instance) Add("runtime", instance.Runtime.Name);
        var leaves = new List<(string Path, JsonNode? Value)>();
        Flatten(config, "", leaves, 0);
        foreach (var (typedPath, value) in leaves)
        {
            var key = YamlKey(typedPath);
            if (key is "app" or "strategy") continue;
            var source = sources.GetValueOrDefault(key);
            // A host written as one string (deploy@web1:22) has no node per field: its name and address come from that string.
            if (source is null && HostField().Match(key) is { Success: true } host)
                source = sources.GetValueOrDefault($"hosts[{host.Groups[1].Value}].host") ?? (host.Groups[2].Value is "host" or "name" ? sources.GetValueOrDefault($"hosts[{host.Groups[1].Value}]") : null);
            // run.env holds the top-level env folded in (AppEnvironment.ApplyTo): name its own source.
            if (source is null && EnvName(key) is { } name)
                source = yamlEnv.FirstOrDefault(e => e.Name == name).Source ?? (config.Environment.EnvFile is { } envFile ? envFile : null);
            Add(key, value, source ?? "default");
        }
        if (unresolved.Count == 0)
            foreach (var (name, variable) in config.Environment.Variables.OrderBy(v => v.Key, StringComparer.Ordinal))
                Add($"env.{name}", variable, yamlEnv.Any(e => e.Name == name) ? sources[$"env.{name}"] : config.Environment.EnvFile ?? "default");
        else
            foreach (var (name, text, source) in yamlEnv)
                Add($"env.{name}", text, source);
        if (config.Environment.EnvFile is null && sources.ContainsKey("env_file") && unresolved.Count > 0)
            Add("env_file", ((YamlScalarNode)layered.Root.Children[new YamlScalarNode("env_file")]).Value);
        else if (config.Environment.EnvFile is { } path) Add("env_file", path);
        return new EffectiveConfig { Files = config.Files, EnvResolved = unresolved.Count == 0, Unresolved = unresolved, Values = values };
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"^hosts\[(\d+)\]\.(\w+)$")]
    private static partial System.Text.RegularExpressions.Regex HostField();

    private static string? EnvName(string key)
    {
        var at = key.IndexOf(".env.", StringComparison.Ordinal);
        return at >= 0 && key.IndexOf('.', at + 5) < 0 ? key[(at + 5)..] : null;
    }

    private static string YamlKey(string typed)
    {
        foreach (var (from, to) in Renames)
            if (typed.StartsWith(from, StringComparison.Ordinal)) { typed = to + typed[from.Length..]; break; }
        // restart's keys sit flat on the typed run (and process types); in YAML they are run.restart.*.
        foreach (var flat in new[] { "min_uptime", "max_restarts", "restart_delay", "max_restart_delay" })
            if (typed.EndsWith("." + flat, StringComparison.Ordinal) && (typed.StartsWith("run.", StringComparison.Ordinal) || typed.StartsWith("processes.", StringComparison.Ordinal)))
                typed = typed[..^flat.Length] + "restart." + flat;
        if (typed.StartsWith("processes.", StringComparison.Ordinal) && typed.IndexOf(".run.", StringComparison.Ordinal) is var run and > 0)
            typed = typed[..run] + typed[(run + 4)..];
        if (HostField().Match(typed) is { Success: true, Groups: var g } && g[2].Value == "address") typed = $"hosts[{g[1].Value}].host";
        return typed.Replace(".stop_signal_name", ".stop_signal", StringComparison.Ordinal);
    }

    /// <summary>Every key path of the merged YAML -> "file:line" of its value.</summary>
    private static void Index(YamlNode node, string path, ConfigSources sources, Dictionary<string, string> into)
    {
        if (path.Length > 0) into[path] = $"{sources.FileOf(node)}:{node.Start.Line}";
        switch (node)
        {
            case YamlMappingNode map:
                foreach (var (k, v) in map.Children)
                    if (k is YamlScalarNode { Value: { } key }) Index(v, path.Length == 0 ? key : $"{path}.{key}", sources, into);
                break;
            case YamlSequenceNode seq:
                for (var i = 0; i < seq.Children.Count; i++) Index(seq.Children[i], $"{path}[{i}]", sources, into);
                break;
        }
    }

    /// <summary>The typed records as leaves: scalars and lists of scalars; records recurse, lists of records by index (process types by name).</summary>
    private static void Flatten(object value, string path, List<(string, JsonNode?)> into, int depth)
    {
        if (depth > 8) return;
        if (Leaf(value) is { } leaf) { into.Add((path, leaf.Value)); return; }
        switch (value)
        {
            case IDictionary dictionary:
                foreach (DictionaryEntry entry in dictionary)
                    if (entry.Value is not null) Flatten(entry.Value, $"{path}.{entry.Key}", into, depth + 1);
                return;
            case IEnumerable list and not string:
                var items = list.Cast<object?>().ToList();
                if (items.All(i => i is null || Leaf(i) is not null))
                {
                    into.Add((path, new JsonArray(items.Select(i => i is null ? null : Leaf(i)!.Value.Value).ToArray())));
                    return;
                }
                for (var i = 0; i < items.Count; i++)
                {
                    if (items[i] is not { } item) continue;
                    var name = path.EndsWith("processes", StringComparison.Ordinal) ? item.GetType().GetProperty("Name")?.GetValue(item) as string : null;
                    Flatten(item, name is null ? $"{path}[{i}]" : $"{path}.{name}", into, depth + 1);
                }
                return;
        }
        if (value.GetType().Namespace?.StartsWith("Cutover", StringComparison.Ordinal) != true)
        {
            into.Add((path, JsonValue.Create(value.ToString())));
            return;
        }
        foreach (var property in value.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            // Only what a config file sets: init-only properties (computed ones have no setter).
            if (property.SetMethod is null || property.GetIndexParameters().Length > 0 || property.Name == "StopSignal") continue;
            if (depth == 0 && SkippedAtTop.Contains(property.Name)) continue;
            if (value is ProcessTypeConfig && property.Name == "Name") continue;
            // A process type's run is the web run with its own command and counts: its env and port are run's, not its own keys.
            if (value is RunConfig && path.StartsWith("processes.", StringComparison.Ordinal) && property.Name is "Env" or "PortEnv") continue;
            var child = property.GetValue(value);
            if (child is null) continue;
            Flatten(child, path.Length == 0 ? Snake(property.Name) : $"{path}.{Snake(property.Name)}", into, depth + 1);
        }
    }

    private readonly record struct LeafValue(JsonNode? Value);

    private static LeafValue? Leaf(object value) => value switch
    {
        string s => new(JsonValue.Create(s)),
        bool b => new(JsonValue.Create(b)),
        int i => new(JsonValue.Create(i)),
        long l => new(JsonValue.Create(l)),
        double d => new(JsonValue.Create(d)),
        TimeSpan t => new(JsonValue.Create(Duration.Format(t))),
        Enum e => new(JsonValue.Create(Snake(e.ToString()).Replace('_', '-'))),
        Uri u => new(JsonValue.Create(u.ToString())),
        System.Net.EndPoint or System.Net.IPAddress => new(JsonValue.Create(value.ToString())),
        Strategy strategy => new(JsonValue.Create(strategy.Name)),
        ITuple tuple => new(JsonValue.Create(tuple[0]?.ToString())),
        _ => null,
    };

    private static JsonNode? Redact(JsonNode? value, Redactor redactor) => value switch
    {
        JsonValue v when v.TryGetValue<string>(out var s) => JsonValue.Create(redactor.Redact(s)),
        JsonArray a => new JsonArray(a.Select(i => Redact(i?.DeepClone(), redactor)).ToArray()),
        _ => value?.DeepClone(),
    };

    private static string Snake(string name)
    {
        var text = new StringBuilder();
        for (var i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0 && (char.IsLower(name[i - 1]) || i + 1 < name.Length && char.IsLower(name[i + 1]))) text.Append('_');
            text.Append(char.ToLowerInvariant(name[i]));
        }
        return text.ToString();
    }

    /// <summary>
    /// The `--json` shape (stable): { "files": [...], "env_resolved": bool, "unresolved": [messages], "values":
    /// { "KEY": { "value": V, "source": "FILE:LINE" | "FILE" | "default" } } }, KEY as cutover.yml spells it
    /// (run.instances, processes.worker.command, hosts[0].host).
    /// </summary>
    public JsonObject ToJson()
    {
        var values = new JsonObject();
        foreach (var value in Values) values[value.Key] = new JsonObject { ["value"] = value.Value?.DeepClone(), ["source"] = value.Source };
        return new JsonObject
        {
            ["files"] = new JsonArray(Files.Select(f => (JsonNode?)JsonValue.Create(f)).ToArray()),
            ["env_resolved"] = EnvResolved,
            ["unresolved"] = new JsonArray(Unresolved.Select(u => (JsonNode?)JsonValue.Create(u)).ToArray()),
            ["values"] = values,
        };
    }

    /// <summary>People's rendering: indented like cutover.yml, each value with `# source`.</summary>
    public string ToText()
    {
        var text = new StringBuilder();
        foreach (var file in Files) text.Append("# file: ").AppendLine(file);
        if (!EnvResolved)
        {
            text.AppendLine("# env is shown as written: it could not be resolved here (cutover deploy would stop on this):");
            foreach (var u in Unresolved) text.Append("#   ").AppendLine(u);
        }
        string[] open = [];
        foreach (var value in Values)
        {
            var parts = value.Key.Split('.');
            var common = 0;
            while (common < open.Length && common < parts.Length - 1 && open[common] == parts[common]) common++;
            for (var i = common; i < parts.Length - 1; i++) text.Append(' ', i * 2).Append(parts[i]).AppendLine(":");
            open = parts[..^1];
            var shown = value.Value?.ToJsonString(new System.Text.Json.JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }) ?? "null";
            var line = $"{new string(' ', (parts.Length - 1) * 2)}{parts[^1]}: {shown}";
            text.Append(line.PadRight(48)).Append(" # ").AppendLine(value.Source);
        }
        return text.ToString();
    }
}
