using Cutover.Config;

namespace Cutover.Tests.Config;

public class ConfigLoaderTests
{
    private const string File = "/srv/app/cutover.yml";

    private static ConfigError SingleError(string yaml)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, File));
        return Assert.Single(e.Errors);
    }

    [Fact]
    public void Reads_every_key_of_the_issue_example()
    {
        var config = ConfigLoader.Parse("""
            app: shop
            strategy: symlink
            root: /var/www/shop
            keep_releases: 7
            shared:
              files: [.env]
              dirs: [storage, public/uploads/]
            hooks:
              build: ["composer install --no-dev"]
              before_switch: ["php artisan migrate --force"]
              after_switch: []
              after_rollback: ["echo back"]
              timeout: 90s
            health:
              url: http://127.0.0.1/health
              expect_status: 204
              timeout: 2s
              interval: 500ms
              retries: 3
            """, File);
        Assert.Equal("shop", config.App);
        Assert.Equal("/var/www/shop", config.Root);
        Assert.Equal(7, config.KeepReleases);
        Assert.Equal([".env"], config.Shared.Files);
        Assert.Equal(["storage", "public/uploads"], config.Shared.Dirs);
        Assert.Equal(["composer install --no-dev"], config.Hooks.Build);
        Assert.Equal(["php artisan migrate --force"], config.Hooks.BeforeSwitch);
        Assert.Empty(config.Hooks.AfterSwitch);
        Assert.Equal(["echo back"], config.Hooks.AfterRollback);
        Assert.Equal(TimeSpan.FromSeconds(90), config.Hooks.Timeout);
        Assert.Equal(new Uri("http://127.0.0.1/health"), config.Health!.Url);
        Assert.Equal(204, config.Health.ExpectStatus);
        Assert.Equal(TimeSpan.FromMilliseconds(500), config.Health.Interval);
        Assert.Equal(3, config.Health.Retries);
    }

    [Fact]
    public void Defaults_apply_and_a_relative_root_is_relative_to_the_config_file()
    {
        var config = ConfigLoader.Parse("app: shop\nroot: ../deploy\n", File);
        Assert.Equal("/srv/deploy", config.Root);
        Assert.Equal(5, config.KeepReleases);
        Assert.Equal(TimeSpan.FromMinutes(10), config.Hooks.Timeout);
        Assert.Null(config.Health);
    }

    [Fact]
    public void A_misspelled_key_is_named_with_its_position_and_a_suggestion()
    {
        var error = SingleError("app: shop\nroot: /r\nkeep_relases: 3\n");
        Assert.Equal(File, error.File);
        Assert.Equal(3, error.Line);
        Assert.Equal(1, error.Column);
        Assert.Equal("keep_relases", error.Key);
        Assert.Contains("did you mean 'keep_releases'?", error.Message);
        Assert.StartsWith($"{File}:3:1: keep_relases:", error.ToString());
    }

    [Fact]
    public void A_misspelled_nested_key_names_its_full_path()
    {
        var error = SingleError("app: shop\nroot: /r\nhealth:\n  url: http://x/\n  retires: 3\n");
        Assert.Equal("health.retires", error.Key);
        Assert.Equal(5, error.Line);
        Assert.Equal(3, error.Column);
        Assert.Contains("did you mean 'retries'?", error.Message);
    }

    [Fact]
    public void An_unknown_key_with_no_near_match_lists_the_known_keys()
    {
        var error = SingleError("app: shop\nroot: /r\nshared:\n  volumes: [a]\n");
        Assert.Equal("shared.volumes", error.Key);
        Assert.Contains("known keys: dirs, files", error.Message);
    }

    [Theory]
    [InlineData("2", "has no unit")]
    [InlineData("two seconds", "is not a duration")]
    [InlineData("5d", "is not a duration")]
    public void An_invalid_duration_is_named(string value, string expected)
    {
        var error = SingleError($"app: shop\nroot: /r\nhooks:\n  timeout: {value}\n");
        Assert.Equal("hooks.timeout", error.Key);
        Assert.Equal(4, error.Line);
        Assert.Equal(12, error.Column);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Every_mistake_is_reported_at_once()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("root: /r\nkeep_releases: zero\nstrategy: magic\n", File));
        Assert.Contains(e.Errors, x => x.Key == "app" && x.Message.Contains("required"));
        Assert.Contains(e.Errors, x => x.Key == "keep_releases" && x.Message.Contains("not a whole number"));
        Assert.Contains(e.Errors, x => x.Key == "strategy" && x.Message.Contains("supported: symlink"));
    }

    [Theory]
    [InlineData("dirs: [storage, storage/logs]", "overlaps 'storage'")]
    [InlineData("dirs: [storage]\n  files: [storage/app.key]", "'storage' overlaps 'storage/app.key'")]
    [InlineData("files: [.env, ./.env]", "listed twice")]
    [InlineData("dirs: [../uploads]", "would leave the release root")]
    [InlineData("dirs: [/var/uploads]", "is absolute")]
    [InlineData("files: [a/../../etc/passwd]", "would leave the release root")]
    [InlineData("dirs: [.cutover]", "Cutover owns")]
    public void Unsafe_or_overlapping_shared_paths_are_refused(string shared, string expected)
    {
        var error = SingleError($"app: shop\nroot: /r\nshared:\n  {shared}\n");
        Assert.StartsWith("shared.", error.Key);
        Assert.Contains(expected, error.Message);
        Assert.True(error.Line >= 4);
    }

    [Fact]
    public void Invalid_yaml_points_at_the_problem()
    {
        var error = SingleError("app: shop\nroot: [unclosed\n");
        Assert.Contains("not valid YAML", error.Message);
        Assert.True(error.Line >= 2);
    }

    [Fact]
    public void A_duplicate_key_is_an_error()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("app: shop\nroot: /r\napp: other\n", File));
        Assert.Contains(e.Errors, x => x.Line == 3);
    }

    [Fact]
    public void A_list_where_a_value_belongs_is_named()
    {
        var error = SingleError("app: shop\nroot: /r\nkeep_releases: [1, 2]\n");
        Assert.Equal("keep_releases", error.Key);
        Assert.Contains("single value", error.Message);
    }

    [Fact]
    public void Health_url_must_be_http()
    {
        var error = SingleError("app: shop\nroot: /r\nhealth:\n  url: ftp://x/\n");
        Assert.Equal("health.url", error.Key);
    }

    [Fact]
    public void A_missing_file_says_how_to_make_one()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Load("/nonexistent/cutover.yml"));
        Assert.Contains("cutover init", e.Message);
    }
}
