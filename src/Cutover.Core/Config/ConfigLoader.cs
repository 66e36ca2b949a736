using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Cutover.Config;

/// <summary>Reads and validates cutover.yml. Collects every mistake before failing, so one run shows them all.</summary>
public static class ConfigLoader
{
    public const string DefaultFileName = "cutover.yml";
    public static readonly string[] Strategies = ["symlink"];

    public static CutoverConfig Load(string path)
    {
        var full = Path.GetFullPath(path);
        if (!System.IO.File.Exists(full))
            throw new ConfigException([new ConfigError(path, 0, 0, "-", $"config file not found (run 'cutover init' to write one, or pass -c FILE)")]);
        return Parse(System.IO.File.ReadAllText(full), full);
    }

    public static CutoverConfig Parse(string yaml, string file)
    {
        var errors = new List<ConfigError>();
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            var message = e.InnerException?.Message ?? e.Message;
            throw new ConfigException([new ConfigError(file, (int)e.Start.Line, (int)e.Start.Column, "-", $"not valid YAML: {message}")]);
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode rootNode)
            throw new ConfigException([new ConfigError(file, 1, 1, "-", "the config must be a mapping of keys, starting with 'app:'")]);

        var top = new YamlSection(rootNode, file, "", errors);
        var app = top.RequiredString("app");
        if (app.Length > 0 && !IsSafeName(app))
            top.Error("app", $"'{app}' may only contain letters, digits, '.', '_' and '-'");

        var strategy = top.String("strategy", "symlink")!;
        if (!Strategies.Contains(strategy))
            top.Error("strategy", $"'{strategy}' is not a strategy this version supports; supported: {string.Join(", ", Strategies)}");

        var rootText = top.RequiredString("root");
        var root = rootText.Length == 0 ? "" : ResolveRoot(rootText, file);
        var keep = top.Int("keep_releases", 5, min: 1);

        var shared = ReadShared(top.Section("shared"));
        var hooks = ReadHooks(top.Section("hooks"));
        var health = ReadHealth(top.Section("health"));
        top.RejectUnknownKeys();

        if (errors.Count > 0) throw new ConfigException(errors);
        return new CutoverConfig
        {
            File = file,
            App = app,
            Strategy = strategy,
            Root = root,
            KeepReleases = keep,
            Shared = shared,
            Hooks = hooks,
            Health = health,
        };
    }

    private static string ResolveRoot(string text, string file)
    {
        if (text.StartsWith("~/", StringComparison.Ordinal))
            text = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), text[2..]);
        var baseDir = Path.GetDirectoryName(file) ?? Directory.GetCurrentDirectory();
        return Path.TrimEndingDirectorySeparator(Path.GetFullPath(text, baseDir));
    }

    private static SharedConfig ReadShared(YamlSection? section)
    {
        if (section is null) return new SharedConfig();
        var seen = new List<(string Path, YamlScalarNode Node, string Key)>();
        foreach (var key in new[] { "files", "dirs" })
        {
            foreach (var node in section.StringList(key))
            {
                var normalized = SharedPaths.Normalize(node.Value!, out var error);
                if (normalized is null)
                {
                    section.Error(node, key, error!);
                    continue;
                }
                var clash = seen.FirstOrDefault(s => SharedPaths.Overlap(s.Path, normalized));
                if (clash.Path is not null)
                {
                    section.Error(node, key, clash.Path == normalized
                        ? $"'{normalized}' is listed twice (also at line {clash.Node.Start.Line} in {clash.Key})"
                        : $"'{normalized}' overlaps '{clash.Path}' (line {clash.Node.Start.Line}); a shared path cannot contain another");
                    continue;
                }
                seen.Add((normalized, node, key));
            }
        }
        section.RejectUnknownKeys();
        return new SharedConfig
        {
            Files = seen.Where(s => s.Key == "files").Select(s => s.Path).ToArray(),
            Dirs = seen.Where(s => s.Key == "dirs").Select(s => s.Path).ToArray(),
        };
    }

    private static HooksConfig ReadHooks(YamlSection? section)
    {
        if (section is null) return new HooksConfig();
        static string[] Commands(YamlSection s, string key) => s.StringList(key).Select(n => n.Value!).ToArray();
        var hooks = new HooksConfig
        {
            Build = Commands(section, "build"),
            BeforeSwitch = Commands(section, "before_switch"),
            AfterSwitch = Commands(section, "after_switch"),
            AfterRollback = Commands(section, "after_rollback"),
            Timeout = section.Duration("timeout", TimeSpan.FromMinutes(10), min: TimeSpan.FromMilliseconds(1)),
        };
        section.RejectUnknownKeys();
        return hooks;
    }

    private static HealthConfig? ReadHealth(YamlSection? section)
    {
        if (section is null) return null;
        var urlText = section.RequiredString("url");
        Uri? url = null;
        if (urlText.Length > 0 && (!Uri.TryCreate(urlText, UriKind.Absolute, out url) || url.Scheme is not ("http" or "https")))
        {
            section.Error("url", $"'{urlText}' is not an http:// or https:// URL");
            url = null;
        }
        var health = new HealthConfig
        {
            Url = url ?? new Uri("http://invalid/"),
            ExpectStatus = section.Int("expect_status", 200, min: 100, max: 599),
            Timeout = section.Duration("timeout", TimeSpan.FromSeconds(2), min: TimeSpan.FromMilliseconds(1)),
            Interval = section.Duration("interval", TimeSpan.FromMilliseconds(500)),
            Retries = section.Int("retries", 10, min: 1),
        };
        section.RejectUnknownKeys();
        return health;
    }

    internal static bool IsSafeName(string name) =>
        name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-') && name != "." && name != "..";
}
