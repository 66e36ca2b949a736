using Cutover.Config;
using Cutover.Tests.Support;

namespace Cutover.Tests.Config;

/// <summary>
/// A key that only other strategies read is an error at that key's line, naming it and the strategies that read it;
/// nothing in a config is accepted and ignored. And every config we ship or document still loads.
/// </summary>
public class StrategyKeysTests
{
    private const string File = "/srv/app/cutover.yml";

    private static readonly Dictionary<string, string> Bases = new()
    {
        ["symlink"] = "app: a\nstrategy: symlink\nroot: /srv/a\n",
        ["rolling"] = "app: a\nstrategy: rolling\nroot: /srv/a\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\n",
        ["blue-green"] = "app: a\nstrategy: blue-green\nroot: /srv/a\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\n",
        ["swarm"] = "app: a\nstrategy: swarm\nroot: /srv/a\nswarm:\n  service: a\n  image: a:1\n  healthcheck: { test: [\"CMD\", \"true\"], interval: 1s, timeout: 1s, retries: 1 }\n",
    };

    /// <summary>key as reported, a snippet that sets it (valid for a strategy that reads it), the word to find its column by, and who reads it.</summary>
    private static readonly (string Key, string Snippet, string Needle, string UsedBy)[] Keys =
    [
        ("run", "run:\n  command: node server.js\n", "run:", "rolling, blue-green"),
        ("proxy", "proxy:\n  listen: 127.0.0.1:3000\n", "proxy:", "rolling, blue-green"),
        ("logs", "logs:\n  retain: 2\n", "logs:", "rolling, blue-green"),
        ("processes", "processes:\n  worker:\n    command: node worker.js\n", "processes:", "rolling, blue-green"),
        ("runtime", "runtime: docker\n", "runtime:", "rolling, blue-green"),
        ("docker", "docker:\n  image: a:1\n  port: 3000\n", "docker:", "rolling, blue-green"),
        ("rolling", "rolling:\n  parallelism: 2\n", "rolling:", "rolling"),
        ("blue_green", "blue_green:\n  monitor: 5s\n", "blue_green:", "blue-green"),
        ("router", "router: builtin\n", "router:", "rolling, blue-green"),
        ("haproxy", "haproxy:\n  socket: /run/haproxy/admin.sock\n  backend: app\n", "haproxy:", "rolling, blue-green"),
        ("nginx", "nginx:\n  upstream_file: /etc/nginx/up.conf\n", "nginx:", "blue-green"),
        ("swarm", "swarm:\n  service: a\n  image: a:1\n", "swarm:", "swarm"),
        ("shared", "shared:\n  dirs: [storage]\n", "shared:", "symlink, rolling, blue-green"),
        ("hooks.build", "hooks:\n  build:\n    - make\n", "build:", "symlink, rolling, blue-green"),
        ("health.path", "health:\n  url: http://127.0.0.1/\n  path: /health\n", "path:", "rolling, blue-green"),
        ("health.start_period", "health:\n  url: http://127.0.0.1/\n  start_period: 5s\n", "start_period:", "rolling, blue-green"),
        ("hosts[0].proxy_listen", "hosts:\n  - { host: web1, proxy_listen: 127.0.0.1:3000 }\n", "proxy_listen:", "rolling, blue-green"),
    ];

    public static TheoryData<string, string> KeyAndStrategyThatDoesNotUseIt()
    {
        var rows = new TheoryData<string, string>();
        foreach (var (key, _, _, usedBy) in Keys)
            foreach (var strategy in Bases.Keys.Where(s => !usedBy.Split(", ").Contains(s)))
                rows.Add(key, strategy);
        return rows;
    }

    [Theory]
    [MemberData(nameof(KeyAndStrategyThatDoesNotUseIt))]
    public void A_key_the_strategy_does_not_read_is_an_error_at_its_line_naming_the_strategies_that_do(string key, string strategy)
    {
        var (_, snippet, needle, usedBy) = Keys.Single(k => k.Key == key);
        var yaml = Bases[strategy] + snippet;
        var at = yaml.IndexOf(needle, Bases[strategy].Length, StringComparison.Ordinal);
        var line = yaml[..at].Count(c => c == '\n') + 1;
        var column = at - yaml.LastIndexOf('\n', at - 1);

        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, File));

        var error = Assert.Single(e.Errors);
        Assert.Equal((File, line, column, key), (error.File, error.Line, error.Column, error.Key));
        Assert.StartsWith($"not used by strategy: {strategy} (used by: {usedBy})", error.Message);
        Assert.StartsWith($"{File}:{line}:{column}: {key}: not used by strategy: {strategy} (used by: {usedBy})", error.ToString());
    }

    [Fact]
    public void Every_strategy_has_its_base_config_and_every_key_is_refused_by_at_least_one()
    {
        Assert.Equal(Strategy.All.Select(s => s.Name).Order(), Bases.Keys.Order());
        foreach (var strategy in Bases.Keys) Assert.Equal(strategy, ConfigLoader.Parse(Bases[strategy], File).Strategy.Name);
        Assert.True(KeyAndStrategyThatDoesNotUseIt().Count() >= 30);
    }

    [Fact]
    public void Refused_keys_are_all_reported_at_once_and_the_strategy_is_a_type()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Bases["rolling"] + "blue_green:\n  monitor: 5s\nswarm:\n  service: a\n", File));
        Assert.Equal(["blue_green", "swarm"], e.Errors.Select(x => x.Key).Order());
        var config = ConfigLoader.Parse(Bases["blue-green"], File);
        Assert.Same(Strategy.BlueGreen, config.Strategy);
        Assert.IsType<BlueGreenSettings>(config.Settings);
        Assert.IsType<ProcessRuntimeConfig>(config.SettingsOf<BlueGreenSettings>().Runtime);
        Assert.Throws<ArgumentException>(() => config.SettingsOf<SwarmSettings>());
    }

    [Fact]
    public void An_unknown_strategy_is_the_only_error_even_with_keys_of_other_strategies()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("app: a\nstrategy: canary\nroot: /srv/a\nrun:\n  command: x\nswarm:\n  service: a\nhealth:\n  path: /up\nhooks:\n  build: [make]\n", File));
        var error = Assert.Single(e.Errors);
        Assert.Equal("strategy", error.Key);
        Assert.Contains("supported: symlink, rolling, blue-green, swarm", error.Message);
    }

    public static TheoryData<string> ShippedConfigs()
    {
        var rows = new TheoryData<string>();
        foreach (var file in Directory.GetFiles(Path.Combine(Repo.Root, "examples"), "cutover.yml", SearchOption.AllDirectories).Order())
            rows.Add(Path.GetRelativePath(Repo.Root, file));
        rows.Add(Path.Combine("src", "Cutover", "Templates", "cutover.yml"));
        return rows;
    }

    [Theory]
    [MemberData(nameof(ShippedConfigs))]
    public void Every_example_config_and_the_init_template_still_load(string relative)
    {
        // The init template's placeholders, filled as `cutover init` fills them.
        var yaml = System.IO.File.ReadAllText(Path.Combine(Repo.Root, relative))
            .Replace("{{app}}", "shop").Replace("{{root}}", "/srv/shop").Replace("{{build_hint}}", "");
        var config = ConfigLoader.Parse(yaml, Path.Combine("/srv/app", relative));
        Assert.NotNull(config.Settings);
    }

    /// <summary>The README's complete configs (the blocks that start with app: or strategy:), one per strategy section.</summary>
    public static TheoryData<int> ReadmeConfigs()
    {
        var rows = new TheoryData<int>();
        foreach (var (_, index) in ReadmeBlocks()) rows.Add(index);
        return rows;
    }

    private static IEnumerable<(string Yaml, int Index)> ReadmeBlocks()
    {
        var readme = System.IO.File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        var blocks = System.Text.RegularExpressions.Regex.Matches(readme, "```ya?ml\n(.*?)```", System.Text.RegularExpressions.RegexOptions.Singleline);
        return blocks.Select((m, i) => (m.Groups[1].Value, i)).Where(b => b.Item1.StartsWith("app:", StringComparison.Ordinal) || b.Item1.StartsWith("strategy:", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(ReadmeConfigs))]
    public void Every_complete_config_in_the_readme_still_loads(int index)
    {
        var yaml = ReadmeBlocks().Single(b => b.Index == index).Yaml;
        // A block that leaves out app (the docker one) is completed the way its text says.
        if (!yaml.StartsWith("app:", StringComparison.Ordinal)) yaml = "app: api\nroot: /srv/api\n" + yaml;
        try
        {
            ConfigLoader.Parse(yaml, "/srv/app/cutover.yml", _ => "set-by-the-test");
        }
        catch (ConfigException e)
        {
            // Only a file the block names but this machine lacks (a compose file, a migrations dir) may fail.
            Assert.All(e.Errors, x => Assert.Contains("does not exist", x.Message));
        }
    }
}
