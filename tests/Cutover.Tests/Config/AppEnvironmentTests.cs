using Cutover.Config;
using Cutover.Tests.Support;

namespace Cutover.Tests.Config;

/// <summary>Top-level env and env_file: dotenv rules, ${VAR} interpolation, secrets, and errors with file:line.</summary>
public sealed class AppEnvironmentTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string ConfigFile => _dir.Combine("cutover.yml");

    private CutoverConfig Load(string extra, IReadOnlyDictionary<string, string>? deployEnvironment = null, string strategy = "rolling")
    {
        var run = strategy == "rolling" ? "run:\n  command: node server.js\n  env:\n    PER_PROCESS: yes\nproxy:\n  listen: 127.0.0.1:8080\n" : "";
        File.WriteAllText(ConfigFile, $"app: shop\nstrategy: {strategy}\nroot: /srv/shop\n{run}{extra}");
        return ConfigLoader.Load([ConfigFile], lookup: name => deployEnvironment?.GetValueOrDefault(name));
    }

    private ConfigError SingleError(string extra, IReadOnlyDictionary<string, string>? deployEnvironment = null)
    {
        var e = Assert.Throws<ConfigException>(() => Load(extra, deployEnvironment));
        return Assert.Single(e.Errors);
    }

    [Fact]
    public void Env_file_follows_the_dotenv_rules()
    {
        File.WriteAllText(_dir.Combine(".env.production"), """
            # a comment

            export API_KEY=abc123secret
            PLAIN = bare value # trailing comment
            HASH=pa#ss
            SINGLE='it is $literal \n' # single quotes keep everything
            DOUBLE="line1\nline2 \"quoted\""
            EMPTY=
            """);
        var env = Load("env_file: .env.production\n").Environment;
        Assert.Equal("abc123secret", env.Variables["API_KEY"]);
        Assert.Equal("bare value", env.Variables["PLAIN"]);
        Assert.Equal("pa#ss", env.Variables["HASH"]);
        Assert.Equal("line1\nline2 \"quoted\"", env.Variables["DOUBLE"]);
        Assert.Equal("", env.Variables["EMPTY"]);
        Assert.Equal("it is $literal \\n", env.Variables["SINGLE"]);
        Assert.Contains("abc123secret", env.Secrets);
    }

    [Fact]
    public void Env_file_errors_name_the_file_and_line_without_the_value()
    {
        var envFile = _dir.Combine(".env");
        File.WriteAllText(envFile, "OK=1\nthis line has no equals hunter2hunter2\nBAD-NAME=x\nQ=\"unclosed\n");
        var e = Assert.Throws<ConfigException>(() => Load("env_file: .env\n"));
        Assert.Equal([$"{envFile}:2:1", $"{envFile}:3:1", $"{envFile}:4:3"], e.Errors.Select(x => $"{x.File}:{x.Line}:{x.Column}"));
        Assert.DoesNotContain("hunter2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_missing_env_file_is_an_error_at_its_key()
    {
        var error = SingleError("env_file: .env.nowhere\n");
        Assert.Equal(ConfigFile, error.File);
        Assert.Equal("env_file", error.Key);
        Assert.Contains("does not exist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Env_values_interpolate_from_the_deploying_environment_then_env_file()
    {
        File.WriteAllText(_dir.Combine(".env"), "DB_PASSWORD=from-file-pw\nSHELL_WINS=file\n");
        var env = Load("""
            env_file: .env
            env:
              NODE_ENV: production
              DATABASE_URL: postgres://app:${DB_PASSWORD}@db/shop
              TOKEN: ${TOKEN}
              SHELL_WINS: ${SHELL_WINS}
              WITH_DEFAULT: ${NOT_SET:-fallback}
              PRICE: $$5
            """, new Dictionary<string, string> { ["TOKEN"] = "tok-from-shell", ["SHELL_WINS"] = "shell" }).Environment;
        Assert.Equal("production", env.Variables["NODE_ENV"]);
        Assert.Equal("postgres://app:from-file-pw@db/shop", env.Variables["DATABASE_URL"]);
        Assert.Equal("tok-from-shell", env.Variables["TOKEN"]);
        Assert.Equal("shell", env.Variables["SHELL_WINS"]);
        Assert.Equal("fallback", env.Variables["WITH_DEFAULT"]);
        Assert.Equal("$5", env.Variables["PRICE"]);
        // Literal values are committed in cutover.yml anyway; what came from env_file or ${VAR} is secret.
        Assert.DoesNotContain("production", env.Secrets);
        Assert.Contains("tok-from-shell", env.Secrets);
        Assert.Contains("postgres://app:from-file-pw@db/shop", env.Secrets);
    }

    [Fact]
    public void A_missing_variable_names_file_line_key_and_variable()
    {
        var error = SingleError("env:\n  DATABASE_URL: ${DATABASE_URL}\n");
        Assert.Equal($"{ConfigFile}:11:17: env.DATABASE_URL: ${{DATABASE_URL}} is not set where cutover deploy runs (export it, put it in env_file, or write ${{DATABASE_URL:-default}})", error.ToString());
    }

    [Fact]
    public void A_lone_dollar_is_refused_rather_than_guessed()
    {
        var error = SingleError("env:\n  PRICE: $5\n");
        Assert.Equal("env.PRICE", error.Key);
        Assert.Contains("$$", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Run_env_is_layered_over_the_app_environment()
    {
        var config = Load("env:\n  PER_PROCESS: app\n  APP_ONLY: one\n");
        var run = config.SettingsOf<RollingSettings>().Run;
        Assert.Equal("yes", run.Env["PER_PROCESS"]);
        Assert.Equal("one", run.Env["APP_ONLY"]);
    }

    [Fact]
    public void The_agent_reads_the_config_without_the_deploys_environment()
    {
        File.WriteAllText(ConfigFile, "app: shop\nroot: /srv/shop\nenv_file: .env.absent\nenv:\n  X: ${UNSET}\n");
        var config = ConfigLoader.Load([ConfigFile], resolveEnvironment: false, lookup: _ => null);
        Assert.True(config.Environment.Deferred);
        Assert.Empty(config.Environment.Variables);
    }

    [Fact]
    public void A_hosts_config_gets_literal_values_in_plain_and_secret_ones_only_through_the_handed_env_file()
    {
        File.WriteAllText(_dir.Combine(".env"), "API_TOKEN=token-from-file\n");
        File.WriteAllText(ConfigFile, """
            app: shop
            strategy: rolling
            root: /srv/shop
            hosts: [{ host: web1 }]
            env_file: .env
            env:
              NODE_ENV: production
              PRICE: $$5
              DATABASE_URL: postgres://${DB_PASSWORD}@db
            run:
              command: node server.js
            proxy:
              listen: 127.0.0.1:3000
            """);
        var config = ConfigLoader.Load([ConfigFile], lookup: name => name == "DB_PASSWORD" ? "pw-from-shell" : null);
        var rendered = Cutover.Fleet.RemoteConfig.Render(config, config.Fleet!.Hosts[0]);
        Assert.DoesNotContain("token-from-file", rendered, StringComparison.Ordinal);
        Assert.DoesNotContain("pw-from-shell", rendered, StringComparison.Ordinal);
        Assert.Contains("env_file: deploy.env", rendered, StringComparison.Ordinal);
        // On the host, with the handed file beside it, the config reads back the same environment.
        var hostDir = _dir.Combine("host");
        Directory.CreateDirectory(hostDir);
        File.WriteAllText(Path.Combine(hostDir, "cutover.yml"), rendered);
        File.WriteAllText(Path.Combine(hostDir, "deploy.env"), Cutover.Releases.ReleaseEnvironmentFile.Format(
            config.Environment.Variables.Where(v => config.Environment.Secrets.Contains(v.Value)).ToDictionary()));
        var onHost = ConfigLoader.Load([Path.Combine(hostDir, "cutover.yml")], lookup: _ => null);
        Assert.Equal(config.Environment.Variables, onHost.Environment.Variables);
        Assert.Equal("$5", onHost.Environment.Variables["PRICE"]);
        Assert.DoesNotContain("production", onHost.Environment.Secrets);
        Cutover.Fleet.RemoteConfig.TakeHandedEnvFile(onHost);
        Assert.False(File.Exists(Path.Combine(hostDir, "deploy.env")));
    }

    [Fact]
    public void The_redactor_hides_secrets_and_their_json_form_but_not_short_values()
    {
        var redactor = new Redactor(["s3cr\"et-value", "abc"]);
        Assert.Equal("token=*** abc", redactor.Redact("token=s3cr\"et-value abc"));
        Assert.Equal("{\"e\":\"***\"}", redactor.Redact(System.Text.Json.JsonSerializer.Serialize(new { e = "s3cr\"et-value" })));
    }

    [Fact]
    public void The_release_env_file_reads_back_exactly()
    {
        var variables = new Dictionary<string, string> { ["A"] = "x\"y\\z\nw", ["B"] = "it's $HOME", ["C"] = "" };
        var layout = new Cutover.Releases.RootLayout(_dir.Path);
        var id = Cutover.Releases.ReleaseId.Parse("20260101_000000");
        Cutover.Releases.ReleaseEnvironmentFile.Write(layout, id, new AppEnvironment { Variables = variables, Secrets = ["it's $HOME"] });
        var read = Cutover.Releases.ReleaseEnvironmentFile.Read(layout, id)!;
        Assert.Equal(variables, read.Variables);
        // Only what was secret stays secret: a literal value is not masked wherever it appears.
        Assert.Equal(["it's $HOME"], read.Secrets);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(layout.EnvFile(id)));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(layout.EnvDir));
    }

    [Fact]
    public void Containers_and_swarm_get_the_app_environment_under_their_own_env()
    {
        File.WriteAllText(ConfigFile, """
            app: shop
            strategy: rolling
            root: /srv/shop
            runtime: docker
            docker:
              image: shop:1
              port: 3000
              env:
                OWN: docker
            env:
              OWN: app
              APP_ONLY: ${TOKEN}
            proxy:
              listen: 127.0.0.1:3000
            """);
        var docker = (DockerConfig)ConfigLoader.Load([ConfigFile], lookup: _ => "tok-1234").SettingsOf<RollingSettings>().Runtime;
        Assert.Equal("docker", docker.Env["OWN"]);
        Assert.Equal("tok-1234", docker.Env["APP_ONLY"]);

        File.WriteAllText(ConfigFile, """
            app: shop
            strategy: swarm
            swarm:
              service: shop
              image: shop:1
              env:
                OWN: swarm
            env:
              OWN: app
              APP_ONLY: value
            """);
        var swarm = ConfigLoader.Load([ConfigFile], lookup: _ => null).SettingsOf<SwarmSettings>().Swarm;
        Assert.Equal("swarm", swarm.Env["OWN"]);
        Assert.Equal("value", swarm.Env["APP_ONLY"]);
    }

    [Fact]
    public void Recovery_removes_the_env_file_of_a_release_that_never_got_its_directory()
    {
        // A deploy killed after its record and env file, before its directory: recovery drops the record and the env file.
        var layout = new Cutover.Releases.RootLayout(_dir.Path);
        var store = new Cutover.Releases.ReleaseStore(layout);
        store.EnsureLayout(adoptRoot: true);
        var id = Cutover.Releases.ReleaseId.Parse("20260101_000000");
        store.Save(new Cutover.Releases.ReleaseRecord { Id = id.Value, Created = DateTimeOffset.UtcNow, Status = Cutover.Releases.ReleaseStatus.Staging, User = "test", Source = "test" });
        Cutover.Releases.ReleaseEnvironmentFile.Write(layout, id, new AppEnvironment { Variables = new Dictionary<string, string> { ["A"] = "secret-value" } });
        store.RecoverInterrupted();
        Assert.False(File.Exists(layout.RecordFile(id)));
        Assert.False(File.Exists(layout.EnvFile(id)));
    }
}
