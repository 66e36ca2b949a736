using System.Text.Json;
using Cutover.Config;
using Cutover.Tests.Support;

namespace Cutover.Tests.Init;

/// <summary>
/// `cutover init` on a fixture project per stack, then `cutover config --json` on what it wrote: the values a deploy
/// would use, read back through the real config reader (every generated file must load).
/// </summary>
public class InitCommandTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Fixture(string name) => Path.Combine(Repo.Root, "tests", "Cutover.Tests", "Init", "Fixtures", name);

    /// <summary>A copy of the fixture to run init in (init writes cutover.yml next to the project).</summary>
    private string Project(string fixture, params string[] without)
    {
        var dir = _dir.Combine("project");
        AppFactory.CopyTree(fixture.StartsWith('/') ? fixture : Fixture(fixture), dir);
        foreach (var file in without) File.Delete(Path.Combine(dir, file));
        return dir;
    }

    private string Root => _dir.Combine("root");

    private static Task<CliResult> Cli(string dir, params string[] args) => CutoverCli.RunAsync(dir, args);

    private async Task<(CliResult Init, JsonElement Values, string Yaml)> InitAndConfig(string dir, params string[] initArgs)
    {
        var init = await Cli(dir, ["init", "--root", Root, .. initArgs]);
        Assert.True(init.ExitCode == 0, init.All);
        var path = Path.Combine(dir, "cutover.yml");
        ConfigLoader.Load([path], resolveEnvironment: false); // the reader accepts every key init wrote
        var config = await Cli(dir, "config", "--json");
        Assert.True(config.ExitCode == 0, config.All);
        var json = JsonDocument.Parse(config.Stdout).RootElement;
        return (init, json.GetProperty("values"), File.ReadAllText(path));
    }

    private static JsonElement Value(JsonElement values, string key) =>
        values.TryGetProperty(key, out var entry) ? entry.GetProperty("value") : throw new Xunit.Sdk.XunitException($"config --json has no {key}: {values}");

    private static string Text(JsonElement values, string key) => Value(values, key).GetString()!;

    private static string Source(JsonElement values, string key) => values.GetProperty(key).GetProperty("source").GetString()!;

    private static string[] List(JsonElement values, string key) => Value(values, key).EnumerateArray().Select(e => e.GetString()!).ToArray();

    [Fact]
    public async Task Pm2_ecosystem_is_mapped_field_by_field_with_unmapped_fields_in_a_comment()
    {
        var dir = Project("express");
        var (init, values, yaml) = await InitAndConfig(dir);

        Assert.Contains("detected: pm2 (ecosystem.config.js)", init.Stdout);
        Assert.Contains("also found: node (package.json); pm2 wins", init.Stdout);
        Assert.Contains("strategy: rolling", init.Stdout);
        Assert.Equal("shop", Text(values, "app"));
        Assert.Equal("rolling", Text(values, "strategy"));
        Assert.Equal("node ./server.js", Text(values, "run.command"));                 // script
        Assert.Contains("instances: max", yaml);                                       // 'max' stays max ...
        Assert.Equal(Environment.ProcessorCount, Value(values, "run.instances").GetInt32()); // ... and is one per CPU
        Assert.StartsWith(Path.Combine(dir, "cutover.yml") + ":", Source(values, "run.instances"));
        Assert.Equal("message", Text(values, "run.ready"));                            // wait_ready
        Assert.Equal("10s", Text(values, "run.ready_timeout"));                        // listen_timeout: 10000
        Assert.Equal("5s", Text(values, "run.kill_timeout"));                          // kill_timeout: 5000
        Assert.Equal(300L * 1024 * 1024, Value(values, "run.max_memory").GetInt64());  // max_memory_restart: 300M
        Assert.Equal("5s", Text(values, "run.restart.min_uptime"));                    // min_uptime
        Assert.Equal(10, Value(values, "run.restart.max_restarts").GetInt32());        // max_restarts
        Assert.Equal("production", Text(values, "run.env.NODE_ENV"));                  // env_production over env
        Assert.Equal("info", Text(values, "run.env.LOG_LEVEL"));                       // env
        Assert.Equal("PORT", Text(values, "run.port_env"));
        Assert.Equal(["npm ci --omit=dev"], List(values, "hooks.build"));
        // The second app is a process type.
        Assert.Equal("node ./worker.js", Text(values, "processes.worker.command"));
        Assert.Equal(2, Value(values, "processes.worker.instances").GetInt32());
        Assert.Equal("3s", Text(values, "processes.worker.kill_timeout"));
        // Nothing dropped silently: every field without an equivalent is in the comment, and said.
        Assert.Contains("# Not mapped from ecosystem.config.js", yaml);
        Assert.Contains("apps[0] (shop): exec_mode: cluster", yaml);
        Assert.Contains("apps[0] (shop): watch: false", yaml);
        Assert.Contains("apps[0] (shop): env_staging: {\"NODE_ENV\":\"staging\"} (not chosen; --env staging takes it)", yaml);
        Assert.Contains("apps[1] (worker): cron_restart: 0 3 * * *", yaml);
        Assert.Contains("4 field(s) with no Cutover equivalent", init.Stdout);
    }

    [Fact]
    public async Task Pm2_env_option_chooses_the_env_block()
    {
        var dir = Project("express");
        var (_, values, yaml) = await InitAndConfig(dir, "--env", "staging");
        Assert.Equal("staging", Text(values, "run.env.NODE_ENV"));
        Assert.Contains("env_production: {\"NODE_ENV\":\"production\"} (not chosen; --env production takes it)", yaml);

        var bad = await Cli(dir, "init", "--force", "--env", "prod uction");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--env 'prod uction' is not a PM2 env name", bad.Stderr);
    }

    [Fact]
    public async Task Node_package_json_gives_rolling_with_the_start_script_and_readiness_by_message()
    {
        var dir = Project("express", "ecosystem.config.js");
        var (init, values, _) = await InitAndConfig(dir);
        Assert.Contains("detected: node (package.json)", init.Stdout);
        Assert.DoesNotContain("also found", init.Stdout);
        Assert.Equal("shop", Text(values, "app"));
        Assert.Equal("rolling", Text(values, "strategy"));
        Assert.Equal("node server.js", Text(values, "run.command"));
        Assert.Equal("PORT", Text(values, "run.port_env"));
        Assert.Equal("message", Text(values, "run.ready"));
        Assert.Equal(["npm ci --omit=dev"], List(values, "hooks.build"));
    }

    [Fact]
    public async Task Node_without_a_ready_message_is_ready_by_http_on_its_health_route_and_uses_the_lockfiles_manager()
    {
        var dir = _dir.Combine("project");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "package.json"), """{ "name": "@acme/api", "main": "app.js" }""");
        File.WriteAllText(Path.Combine(dir, "yarn.lock"), "");
        File.WriteAllText(Path.Combine(dir, "app.js"), "app.get('/healthz', (req, res) => res.send('ok'));\n");
        var (_, values, _) = await InitAndConfig(dir);
        Assert.Equal("api", Text(values, "app"));
        Assert.Equal("node app.js", Text(values, "run.command"));
        Assert.Equal("http", Text(values, "run.ready"));
        Assert.Equal("/healthz", Text(values, "health.path"));
        Assert.Equal(["yarn install --production --frozen-lockfile"], List(values, "hooks.build"));
    }

    [Fact]
    public async Task Laravel_gets_symlink_shared_env_and_storage_artisan_hooks_and_the_realpath_root_block()
    {
        var dir = Project("laravel");
        var (init, values, _) = await InitAndConfig(dir);
        Assert.Contains("detected: laravel (artisan)", init.Stdout);
        Assert.Equal("storefront", Text(values, "app"));
        Assert.Equal("symlink", Text(values, "strategy"));
        Assert.Equal([".env"], List(values, "shared.files"));
        Assert.Equal(["storage"], List(values, "shared.dirs"));
        Assert.Equal(["composer install --no-dev --optimize-autoloader --no-interaction", "php artisan config:cache", "php artisan route:cache"], List(values, "hooks.build"));
        Assert.Equal(["php artisan migrate --force"], List(values, "hooks.before_switch"));
        Assert.Contains("fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;", init.Stdout);
        Assert.Contains($"root {Root}/current/public;", init.Stdout);
    }

    [Fact]
    public async Task Laravel_with_a_directory_of_sql_files_gets_migrations_instead_of_artisan_migrate()
    {
        var dir = Project("laravel");
        Directory.CreateDirectory(Path.Combine(dir, "database", "sql"));
        File.WriteAllText(Path.Combine(dir, "database", "sql", "001_init.sql"), "CREATE TABLE t (id int);\n");
        var (_, values, _) = await InitAndConfig(dir);
        Assert.Equal(Path.Combine(dir, "database", "sql"), Text(values, "migrations.dir"));
        Assert.Empty(List(values, "hooks.before_switch"));
    }

    [Fact]
    public async Task A_web_csproj_gives_rolling_with_dotnet_publish_and_the_kestrel_port_variable()
    {
        var dir = Project("aspnet");
        var (init, values, _) = await InitAndConfig(dir);
        Assert.Contains("detected: dotnet (Storefront.Api.csproj)", init.Stdout);
        Assert.Equal("storefront-api", Text(values, "app"));
        Assert.Equal("rolling", Text(values, "strategy"));
        Assert.Equal("dotnet out/Storefront.Api.dll", Text(values, "run.command"));
        Assert.Equal("ASPNETCORE_HTTP_PORTS", Text(values, "run.port_env"));
        Assert.Equal("http", Text(values, "run.ready"));
        Assert.Equal("/health", Text(values, "health.path"));
        Assert.Equal(["dotnet publish -c Release -o out"], List(values, "hooks.build"));
    }

    [Fact]
    public async Task A_web_project_that_reads_PORT_itself_gets_port_env_PORT()
    {
        var dir = _dir.Combine("project");
        Directory.CreateDirectory(dir);
        foreach (var file in new[] { "AspNetApp.csproj", "Program.cs" })
            File.Copy(Path.Combine(Repo.Root, "examples", "aspnet-app", file), Path.Combine(dir, file));
        var (init, values, _) = await InitAndConfig(dir);
        Assert.Equal("dotnet out/aspnet-app.dll", Text(values, "run.command"));
        Assert.Equal("PORT", Text(values, "run.port_env"));
        Assert.Contains("because the code reads PORT", init.Stdout);
    }

    [Fact]
    public async Task Compose_with_deploy_replicas_and_update_config_gives_swarm_reading_the_compose_file()
    {
        var dir = Project("compose-swarm");
        var (init, values, _) = await InitAndConfig(dir);
        Assert.Contains("detected: compose (docker-compose.yml)", init.Stdout);
        Assert.Equal("swarm", Text(values, "strategy"));
        Assert.Equal("web", Text(values, "swarm.service"));
        Assert.Equal("registry.example.com/shop:1.0", Text(values, "swarm.image"));
        Assert.Equal(3, Value(values, "swarm.replicas").GetInt32());
        Assert.Contains("redis left to compose", init.Stdout);
    }

    [Fact]
    public async Task Compose_without_deploy_gives_runtime_docker_on_the_published_and_container_ports()
    {
        var dir = Project("compose-single");
        var (_, values, _) = await InitAndConfig(dir);
        Assert.Equal("rolling", Text(values, "strategy"));
        Assert.Equal("docker", Text(values, "runtime"));
        Assert.Equal("app:latest", Text(values, "docker.image"));
        Assert.Equal(5000, Value(values, "docker.port").GetInt32());
        Assert.Equal("0.0.0.0:8000", Text(values, "proxy.listen"));
        Assert.Equal("production", Text(values, "docker.env.FLASK_ENV"));
    }

    [Fact]
    public async Task A_static_site_gets_symlink()
    {
        var dir = Project("static");
        var (init, values, _) = await InitAndConfig(dir);
        Assert.Contains("detected: static (index.html)", init.Stdout);
        Assert.Equal("symlink", Text(values, "strategy"));
        Assert.Contains($"root {Root}/current;", init.Stdout);
        Assert.False(values.TryGetProperty("run.command", out _));
    }

    [Fact]
    public async Task Kamal_deploy_yml_gives_docker_hosts_roles_proxy_and_secret_references_shown_as_stars()
    {
        var dir = Project("kamal");
        var init = await Cli(dir, "init", "--root", Root);
        Assert.True(init.ExitCode == 0, init.All);
        Assert.Contains("detected: kamal (config/deploy.yml)", init.Stdout);
        var config = await CutoverCli.RunAsync(dir, new Dictionary<string, string> { ["RAILS_MASTER_KEY"] = "m4ster-key-value" }, "config", "--json");
        Assert.True(config.ExitCode == 0, config.All);
        Assert.DoesNotContain("m4ster-key-value", config.Stdout);
        var json = JsonDocument.Parse(config.Stdout).RootElement;
        Assert.True(json.GetProperty("env_resolved").GetBoolean());
        var values = json.GetProperty("values");
        Assert.Equal("docker", Text(values, "runtime"));
        Assert.Equal("acme/billing", Text(values, "docker.image"));
        Assert.Equal(3000, Value(values, "docker.port").GetInt32());
        Assert.Equal(["billing.example.com"], List(values, "proxy.hosts"));
        Assert.Equal("0.0.0.0:443", Text(values, "proxy.tls.listen"));
        Assert.Equal("/up", Text(values, "health.path"));
        Assert.Equal("***", Text(values, "env.RAILS_MASTER_KEY"));
        Assert.Equal("1", Text(values, "env.RAILS_LOG_TO_STDOUT"));
        Assert.Equal("192.0.2.12", Text(values, "hosts[2].host"));
        Assert.Matches(@"cutover\.yml:\d+$", Source(values, "hosts[2].host"));
        Assert.Equal(["job"], List(values, "hosts[2].roles"));
        Assert.Equal("bin/jobs", Text(values, "processes.job.command"));
        Assert.Contains("builder (no Cutover equivalent)", File.ReadAllText(Path.Combine(dir, "cutover.yml")));
    }

    [Fact]
    public async Task Init_never_overwrites_without_force_and_print_writes_only_to_stdout()
    {
        var dir = Project("express", "ecosystem.config.js");
        Assert.Equal(0, (await Cli(dir, "init", "--root", Root)).ExitCode);
        var path = Path.Combine(dir, "cutover.yml");
        File.WriteAllText(path, "app: mine\nroot: /srv/mine\n");

        var again = await Cli(dir, "init");
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("already exists; pass --force", again.Stderr);
        Assert.Equal("app: mine\nroot: /srv/mine\n", File.ReadAllText(path));

        var printed = await Cli(dir, "init", "--print", "--root", Root);
        Assert.Equal(0, printed.ExitCode);
        Assert.Equal("app: mine\nroot: /srv/mine\n", File.ReadAllText(path));
        Assert.StartsWith("# cutover.yml for shop", printed.Stdout);
        Assert.Contains("detected: node (package.json)", printed.Stderr); // the report stays out of the YAML
        Assert.Equal("shop", ConfigLoader.Parse(printed.Stdout, path).App);

        var both = await Cli(dir, "init", "--print", "--force");
        Assert.Equal(2, both.ExitCode);
        Assert.Contains("--print writes nothing", both.Stderr);
        var envWithoutPm2 = await Cli(dir, "init", "--force", "--env", "staging");
        Assert.Equal(2, envWithoutPm2.ExitCode);
        Assert.Contains("--env chooses a PM2 env_NAME block, and node (package.json) was detected here", envWithoutPm2.Stderr);
        Assert.Equal("app: mine\nroot: /srv/mine\n", File.ReadAllText(path));

        var forced = await Cli(dir, "init", "--force", "--root", Root);
        Assert.Equal(0, forced.ExitCode);
        Assert.Equal(printed.Stdout, File.ReadAllText(path));
    }

    [Fact]
    public async Task From_imports_a_named_file_and_refuses_what_it_cannot_read()
    {
        var dir = _dir.Combine("project");
        Directory.CreateDirectory(Path.Combine(dir, "deploy"));
        File.WriteAllText(Path.Combine(dir, "deploy", "pm2.json"), """{ "apps": [{ "name": "api", "script": "dist/main.js", "instances": 4, "autorestart": true }] }""");
        var (init, values, yaml) = await InitAndConfig(dir, "--from", "pm2", "deploy/pm2.json");
        Assert.Contains("importing deploy/pm2.json as pm2", init.Stdout);
        Assert.Equal("node dist/main.js", Text(values, "run.command"));
        Assert.Equal(4, Value(values, "run.instances").GetInt32());
        Assert.Contains("apps[0] (api): autorestart: true", yaml);

        File.Copy(Path.Combine(Fixture("compose-swarm"), "docker-compose.yml"), Path.Combine(dir, "deploy", "stack.yml"));
        var compose = await Cli(dir, "init", "--print", "--from", "compose", "deploy/stack.yml");
        Assert.True(compose.ExitCode == 0, compose.All);
        Assert.Contains("compose: deploy/stack.yml", compose.Stdout);

        foreach (var (args, message) in new (string[], string)[]
                 {
                     (["--from", "pm2"], "--from pm2 needs the file to import"),
                     (["--from", "pm2", "missing.js"], "--from pm2: missing.js does not exist"),
                     (["deploy/pm2.json"], "is read only with --from"),
                     (["--from", "capistrano", "deploy/pm2.json"], "capistrano"),
                 })
        {
            var bad = await Cli(dir, ["init", "--force", .. args]);
            Assert.Equal(2, bad.ExitCode);
            Assert.Contains(message, bad.Stderr);
        }

        File.WriteAllText(Path.Combine(dir, "deploy", "broken.config.js"), "module.exports = { apps: [ ;\n");
        var broken = await Cli(dir, "init", "--force", "--from", "pm2", "deploy/broken.config.js");
        Assert.Equal(2, broken.ExitCode);
        Assert.Contains("node could not evaluate broken.config.js", broken.Stderr);
        Assert.Single(broken.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public async Task An_ecosystem_file_that_never_finishes_evaluating_is_stopped_at_the_timeout()
    {
        var path = _dir.Combine("ecosystem.config.js");
        File.WriteAllText(path, "while (true) {}\n");
        var e = await Assert.ThrowsAsync<Cutover.Init.InitException>(() => Cutover.Init.Pm2Import.EvaluateAsync(path, TimeSpan.FromSeconds(1), CancellationToken.None));
        Assert.True(e.Environment); // exit 1: the machine's node, not the project, is what failed
        Assert.Contains("node did not finish evaluating ecosystem.config.js within 1s", e.Message);
    }

    [Fact]
    public async Task Strategy_overrides_the_recommendation_or_refuses_what_the_stack_cannot_do()
    {
        var dir = Project("express", "ecosystem.config.js");
        var (init, values, _) = await InitAndConfig(dir, "--strategy", "blue-green");
        Assert.Equal("blue-green", Text(values, "strategy"));
        Assert.Equal("node server.js", Text(values, "run.command"));

        var symlink = await Cli(dir, "init", "--force", "--strategy", "symlink", "--root", Root);
        Assert.True(symlink.ExitCode == 0, symlink.All);
        Assert.Equal(Strategy.Symlink, ConfigLoader.Load([Path.Combine(dir, "cutover.yml")]).Strategy);

        var staticDir = _dir.Combine("site");
        AppFactory.CopyTree(Fixture("static"), staticDir);
        var refused = await Cli(staticDir, "init", "--strategy", "rolling");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("--strategy rolling runs the app as instances, and a static project has no command to run", refused.Stderr);
        Assert.False(File.Exists(Path.Combine(staticDir, "cutover.yml")));

        var unknown = await Cli(staticDir, "init", "--strategy", "canary");
        Assert.Equal(2, unknown.ExitCode);
        Assert.False(File.Exists(Path.Combine(staticDir, "cutover.yml")));
    }
}
