using System.Text.Json;
using Cutover.Tests.Support;

namespace Cutover.Tests.Init;

/// <summary>`cutover config`: the effective values after defaults and -c layering, with file:line, secrets as ***.</summary>
public class ConfigCommandTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Write(string name, string text)
    {
        var path = _dir.Combine(name);
        File.WriteAllText(path, text);
        return path;
    }

    private Task<CliResult> Cli(IReadOnlyDictionary<string, string> env, params string[] args) => CutoverCli.RunAsync(_dir.Path, env, args);

    private static JsonElement Entry(CliResult result, string key) =>
        JsonDocument.Parse(result.Stdout).RootElement.GetProperty("values").GetProperty(key);

    [Fact]
    public async Task Layered_files_give_each_value_the_file_and_line_that_set_it_and_defaults_say_so()
    {
        var base_ = Write("cutover.yml", $"""
            app: shop
            strategy: rolling
            root: {_dir.Combine("root")}
            run:
              command: node server.js
              instances: 2
            proxy:
              listen: 127.0.0.1:3000
            """);
        var prod = Write("cutover.production.yml", "run:\n  instances: 4\n");
        var result = await Cli(new Dictionary<string, string>(), "config", "--json", "-c", base_, "-c", prod);
        Assert.True(result.ExitCode == 0, result.All);

        Assert.Equal(4, Entry(result, "run.instances").GetProperty("value").GetInt32());
        Assert.Equal($"{prod}:2", Entry(result, "run.instances").GetProperty("source").GetString());
        Assert.Equal("node server.js", Entry(result, "run.command").GetProperty("value").GetString());
        Assert.Equal($"{base_}:5", Entry(result, "run.command").GetProperty("source").GetString());
        Assert.Equal(5, Entry(result, "keep_releases").GetProperty("value").GetInt32());
        Assert.Equal("default", Entry(result, "keep_releases").GetProperty("source").GetString());
        Assert.Equal("30s", Entry(result, "proxy.drain_timeout").GetProperty("value").GetString());
        Assert.Equal([base_, prod], JsonDocument.Parse(result.Stdout).RootElement.GetProperty("files").EnumerateArray().Select(f => f.GetString()));

        var human = await Cli(new Dictionary<string, string>(), "config", "-c", base_, "-c", prod);
        Assert.Equal(0, human.ExitCode);
        Assert.Contains("run:\n", human.Stdout);
        Assert.Matches(@"\n  instances: 4 +# " + System.Text.RegularExpressions.Regex.Escape($"{prod}:2") + "\n", human.Stdout);
        Assert.Matches(@"\nkeep_releases: 5 +# default\n", human.Stdout);
    }

    [Fact]
    public async Task Secrets_from_env_file_and_variables_are_shown_as_stars()
    {
        Write("app.env", "DB_PASSWORD=hunter2-secret\n");
        var config = Write("cutover.yml", $"""
            app: shop
            root: {_dir.Combine("root")}
            env_file: app.env
            env:
              API_TOKEN: {"${TOKEN}"}
              MODE: plain-value
            """);
        var env = new Dictionary<string, string> { ["TOKEN"] = "tok-123456" };
        foreach (var args in new[] { new[] { "config", "--json" }, ["config"] })
        {
            var result = await Cli(env, args);
            Assert.True(result.ExitCode == 0, result.All);
            Assert.DoesNotContain("hunter2-secret", result.Stdout);
            Assert.DoesNotContain("tok-123456", result.Stdout);
            Assert.Contains("plain-value", result.Stdout);
        }
        var json = await Cli(env, "config", "--json");
        Assert.Equal("***", Entry(json, "env.DB_PASSWORD").GetProperty("value").GetString());
        Assert.Equal(_dir.Combine("app.env"), Entry(json, "env.DB_PASSWORD").GetProperty("source").GetString());
        Assert.Equal("***", Entry(json, "env.API_TOKEN").GetProperty("value").GetString());
        Assert.Equal($"{config}:5", Entry(json, "env.API_TOKEN").GetProperty("source").GetString());
    }

    [Fact]
    public async Task A_variable_that_cannot_be_resolved_is_shown_unresolved_not_failed_on()
    {
        Write("cutover.yml", $"""
            app: shop
            root: {_dir.Combine("root")}
            env:
              API_TOKEN: {"${NOT_SET_ANYWHERE}"}
            """);
        var result = await Cli(new Dictionary<string, string>(), "config", "--json");
        Assert.True(result.ExitCode == 0, result.All);
        var json = JsonDocument.Parse(result.Stdout).RootElement;
        Assert.False(json.GetProperty("env_resolved").GetBoolean());
        Assert.Contains("NOT_SET_ANYWHERE", json.GetProperty("unresolved")[0].GetString());
        Assert.Equal("${NOT_SET_ANYWHERE}", Entry(result, "env.API_TOKEN").GetProperty("value").GetString());

        var human = await Cli(new Dictionary<string, string>(), "config");
        Assert.Contains("# env is shown as written", human.Stdout);
    }

    [Fact]
    public async Task A_config_with_a_mistake_is_refused_like_every_command_refuses_it()
    {
        var config = Write("cutover.yml", "app: shop\nroot: /srv/shop\nkeep_releases: none\n");
        var result = await Cli(new Dictionary<string, string>(), "config");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"{config}:3:16: keep_releases: 'none' is not a whole number", result.Stderr);
        Assert.Equal("", result.Stdout);

        var json = await Cli(new Dictionary<string, string>(), "config", "--json");
        Assert.Equal(2, json.ExitCode);
        var error = JsonDocument.Parse(json.Stdout).RootElement;
        Assert.Equal("config", error.GetProperty("kind").GetString());
    }
}
