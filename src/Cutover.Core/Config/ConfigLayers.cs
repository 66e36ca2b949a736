using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Cutover.Config;

/// <summary>
/// Which file each YAML node came from when `-c` is given more than once, so an error in a layered config names the
/// file that wrote the value (`cutover.production.yml:4:3: run.instances: ...`) and relative paths resolve against it.
/// </summary>
public sealed class ConfigSources
{
    private readonly Dictionary<YamlNode, string> _files = new(ReferenceEqualityComparer.Instance);

    public string? FileOf(YamlNode node) => _files.GetValueOrDefault(node);

    internal void Add(YamlNode root, string file)
    {
        foreach (var node in root.AllNodes) _files[node] = file;
    }
}

/// <summary>
/// Several config files as one, the way compose layers `-f a.yml -f b.yml`: mappings are merged key by key,
/// recursively; a scalar or a list in a later file replaces the earlier value whole (lists are not concatenated, so a
/// production file can say exactly which hooks run); `key: ~` in a later file takes the key back out. Every node keeps
/// its own file and position.
/// </summary>
public static class ConfigLayers
{
    public sealed record Layered(YamlMappingNode Root, ConfigSources Sources);

    /// <summary>Each file parsed and merged over the ones before; every unreadable file is reported, by name.</summary>
    public static Layered Load(IReadOnlyList<string> files)
    {
        if (files.Count == 0) throw new ArgumentException("at least one config file", nameof(files));
        var sources = new ConfigSources();
        YamlMappingNode? merged = null;
        var errors = new List<ConfigError>();
        foreach (var file in files)
        {
            var full = Path.GetFullPath(file);
            if (!File.Exists(full))
            {
                errors.Add(new ConfigError(file, 0, 0, "-", files.Count == 1
                    ? "config file not found (run 'cutover init' to write one, or pass -c FILE)"
                    : "config file not found (each -c names a file; later files override earlier ones key by key)"));
                continue;
            }
            var root = ParseRoot(File.ReadAllText(full), full, errors);
            if (root is null) continue;
            sources.Add(root, full);
            merged = merged is null ? root : Merge(merged, root);
        }
        if (errors.Count > 0 || merged is null) throw new ConfigException(errors);
        return new Layered(merged, sources);
    }

    internal static YamlMappingNode? ParseRoot(string yaml, string file, List<ConfigError> errors)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            var message = e.InnerException?.Message ?? e.Message;
            errors.Add(new ConfigError(file, (int)e.Start.Line, (int)e.Start.Column, "-", $"not valid YAML: {message}"));
            return null;
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode rootNode)
        {
            errors.Add(new ConfigError(file, 1, 1, "-", "the config must be a mapping of keys, starting with 'app:'"));
            return null;
        }
        return rootNode;
    }

    /// <summary>
    /// <paramref name="overlay"/> into <paramref name="bottom"/>, which is changed in place (it is this load's own
    /// tree): a mapping both write keeps the earlier node (and its position) with merged children.
    /// </summary>
    private static YamlMappingNode Merge(YamlMappingNode bottom, YamlMappingNode overlay)
    {
        foreach (var (key, value) in overlay.Children.ToList())
        {
            var existing = bottom.Children.FirstOrDefault(pair => SameKey(pair.Key, key));
            if (existing.Key is null)
            {
                bottom.Children.Add(key, value);
                continue;
            }
            if (existing.Value is YamlMappingNode under && value is YamlMappingNode over)
            {
                Merge(under, over);
                continue;
            }
            // Replaced whole: the later file's key node and value, so errors point into the later file.
            bottom.Children.Remove(existing.Key);
            bottom.Children.Add(key, value);
        }
        return bottom;
    }

    private static bool SameKey(YamlNode a, YamlNode b) =>
        a is YamlScalarNode sa && b is YamlScalarNode sb ? sa.Value == sb.Value : ReferenceEquals(a, b);
}
