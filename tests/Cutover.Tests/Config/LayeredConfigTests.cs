using Cutover.Config;
using Cutover.Tests.Support;

namespace Cutover.Tests.Config;

/// <summary>-c given more than once: files merged key by key, errors naming the file each value came from.</summary>
public sealed class LayeredConfigTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Write(string name, string yaml)
    {
        var path = _dir.Combine(name);
        File.WriteAllText(path, yaml);
        return path;
    }

    private string Base() => Write("cutover.yml", """
        app: shop
        strategy: rolling
        root: /srv/shop
        run:
          command: node server.js
          instances: 2
          env:
            LOG_LEVEL: debug
            REGION: eu
        proxy:
          listen: 127.0.0.1:8080
        hooks:
          after_switch: ["echo a", "echo b"]
        """);

    [Fact]
    public void A_later_file_overrides_key_by_key_and_keeps_the_rest()
    {
        var production = Write("cutover.production.yml", """
            root: /srv/shop-production
            run:
              instances: 4
              env:
                LOG_LEVEL: warn
            hooks:
              after_switch: ["echo production"]
            """);
        var config = ConfigLoader.Load([Base(), production]);
        var run = config.SettingsOf<RollingSettings>().Run;
        Assert.Equal("/srv/shop-production", config.Root);
        Assert.Equal(4, run.Instances);
        Assert.Equal("node server.js", run.Command);
        // Mappings merge recursively: REGION stays, LOG_LEVEL is the later file's.
        Assert.Equal("warn", run.Env["LOG_LEVEL"]);
        Assert.Equal("eu", run.Env["REGION"]);
        // Lists are replaced whole, as compose does: the production file says exactly which hooks run.
        Assert.Equal(["echo production"], config.Hooks.AfterSwitch);
        Assert.Equal([Path.GetFullPath(_dir.Combine("cutover.yml")), production], config.Files);
    }

    [Fact]
    public void An_error_names_the_file_line_and_key_the_value_came_from()
    {
        var production = Write("cutover.production.yml", "\n\nrun:\n  instances: none\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load([Base(), production]));
        var error = Assert.Single(e.Errors);
        Assert.Equal($"{production}:4:14: run.instances: 'none' is not a whole number", error.ToString());
    }

    [Fact]
    public void An_unknown_key_in_the_base_file_is_reported_in_the_base_file()
    {
        var basePath = Write("base.yml", "app: shop\nroot: /srv/shop\nkeep_releasez: 3\n");
        var overlay = Write("over.yml", "keep_releases: 4\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load([basePath, overlay]));
        var error = Assert.Single(e.Errors);
        Assert.StartsWith($"{basePath}:3:1: keep_releasez: unknown key", error.ToString());
    }

    [Fact]
    public void A_tilde_in_a_later_file_takes_a_key_out()
    {
        var overlay = Write("over.yml", "hooks:\n  after_switch: ~\n");
        var config = ConfigLoader.Load([Base(), overlay]);
        Assert.Empty(config.Hooks.AfterSwitch);
    }

    [Fact]
    public void Relative_paths_resolve_against_the_file_that_sets_them()
    {
        Directory.CreateDirectory(_dir.Combine("prod"));
        var basePath = Write("cutover.yml", "app: shop\nroot: ./site\n");
        var overlay = Write("prod/cutover.production.yml", "root: ./prod-site\n");
        Assert.Equal(_dir.Combine("site"), ConfigLoader.Load([basePath]).Root);
        Assert.Equal(_dir.Combine("prod", "prod-site"), ConfigLoader.Load([basePath, overlay]).Root);
    }

    [Fact]
    public void Every_missing_or_broken_file_is_named()
    {
        var broken = Write("broken.yml", "app: [unclosed\n");
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load([Base(), _dir.Combine("missing.yml"), broken]));
        Assert.Equal(2, e.Errors.Count);
        Assert.Contains(e.Errors, x => x.File == _dir.Combine("missing.yml") && x.Message.StartsWith("config file not found", StringComparison.Ordinal));
        Assert.Contains(e.Errors, x => x.File == broken && x.Message.StartsWith("not valid YAML", StringComparison.Ordinal));
    }
}
