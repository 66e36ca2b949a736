using System.Text.Json;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Progress;
using Cutover.Releases;
using Cutover.Tests.Support;

namespace Cutover.Tests.Migrations;

/// <summary>Migrations inside a deploy: linted before staging, applied before the switch, and never at the cost of what serves.</summary>
[Collection(PostgresCollection.Name)]
[Trait(Needs.Trait, Needs.Postgres)]
public sealed class MigrationDeployTests(PostgresFixture pg) : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();
    private string Root => _dir.Combine("root");
    private string Source => _dir.Combine("src");
    private string MigrationsDir => _dir.Combine("db", "migrations");

    public void Dispose()
    {
        _http.Dispose();
        _dir.Dispose();
    }

    private void Migration(string name, string sql)
    {
        Directory.CreateDirectory(MigrationsDir);
        File.WriteAllText(Path.Combine(MigrationsDir, name), sql);
    }

    private async Task<DeployResult> DeployAsync(string version, string db, string lint = "error")
    {
        AppFactory.WriteHelloPhp(Source, version);
        var config = ConfigLoader.Load(AppFactory.WriteConfig(_dir.Path, Root, $"""
            migrations:
              dir: db/migrations
              database_url_env: SHOP_DB
              lock_timeout: 2s
              lint: {lint}
            """));
        var deployer = new DeployPipeline(config, new SilentProgress(), _http, environment: name => name == "SHOP_DB" ? db : null);
        return await deployer.DeployAsync(new DeployRequest(Source, "rev-" + version, TimeSpan.Zero, "test"), CancellationToken.None);
    }

    private ReleaseStore Store => new(new RootLayout(Root));

    [Fact]
    public async Task Database_url_env_is_found_in_the_app_environment_before_the_process_environment()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        Migration("0001_users.sql", "CREATE TABLE users (id bigint PRIMARY KEY);");
        AppFactory.WriteHelloPhp(Source, "1.0.0");
        // SHOP_DB is not in this process's environment: only env: gives it, from ${SHOP_DB_SECRET} where deploy runs.
        var config = ConfigLoader.Load([AppFactory.WriteConfig(_dir.Path, Root, """
            env:
              SHOP_DB: ${SHOP_DB_SECRET}
            migrations:
              dir: db/migrations
              database_url_env: SHOP_DB
            """)], lookup: name => name == "SHOP_DB_SECRET" ? db : null);
        var result = await new DeployPipeline(config, new SilentProgress(), _http).DeployAsync(new DeployRequest(Source, "rev", TimeSpan.Zero, "test"), CancellationToken.None);
        Assert.True(result.Succeeded, result.Error);
        Assert.Equal(1L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM cutover_migrations"));
    }

    [Fact]
    [Trait(Needs.Trait, Needs.Nginx)]
    public async Task A_failing_migration_stops_the_deploy_and_the_old_release_keeps_serving()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        Migration("0001_users.sql", "CREATE TABLE users (id bigint PRIMARY KEY, name text);");
        var first = await DeployAsync("1.0.0", db);
        Assert.True(first.Succeeded, first.Error);

        using var nginx = new NginxPhpServer(Root);
        Assert.StartsWith("hello from 1.0.0", await _http.GetStringAsync(nginx.BaseUrl + "/index.php"));

        Migration("0002_broken.sql", "ALTER TABLE users ADD COLUMN IF NOT EXISTS email text;\nUPDATE users SET email = no_such_column;");
        var second = await DeployAsync("2.0.0", db);

        Assert.Equal(DeployOutcome.Failed, second.Outcome);
        Assert.Contains("migration failed", second.Error);
        Assert.Contains("0002_broken.sql:2:", second.Error);
        Assert.StartsWith("hello from 1.0.0", await _http.GetStringAsync(nginx.BaseUrl + "/index.php"));
        Assert.Equal("releases/" + first.Release, new FileInfo(Path.Combine(Root, "current")).LinkTarget);
        Assert.Equal(ReleaseStatus.Failed, Store.Find(ReleaseId.Parse(second.Release))!.Status);
        // the history is true: only 0001 applied, and 0002's first statement was rolled back with it
        Assert.Equal(1L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM cutover_migrations"));
        Assert.Equal(0L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'email'"));
    }

    [Fact]
    public async Task An_error_level_lint_finding_stops_the_deploy_before_anything_is_staged_or_applied()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        Migration("0001_users.sql", "CREATE TABLE users (id bigint PRIMARY KEY, name text);");
        var first = await DeployAsync("1.0.0", db);
        Assert.True(first.Succeeded, first.Error);

        Migration("0002_rename.sql", "ALTER TABLE users RENAME COLUMN name TO full_name;");
        var error = await Assert.ThrowsAsync<DeployException>(() => DeployAsync("2.0.0", db));

        Assert.Contains("1 error-level findings", error.Message);
        Assert.Single(Store.List());
        Assert.Equal(1L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM cutover_migrations"));

        // lint: warn shows the finding and goes on
        var warned = await DeployAsync("2.0.0", db, lint: "warn");
        Assert.True(warned.Succeeded, warned.Error);
        Assert.Equal(1L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'full_name'"));
    }

    [Fact]
    public async Task Applied_migrations_and_safety_assured_reasons_are_kept_in_the_release_record()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        Migration("0001_users.sql", "CREATE TABLE users (id bigint PRIMARY KEY, name text, legacy text);");
        Migration("0002_drop_legacy.sql", "-- cutover:safety-assured no release since 20261101 reads users.legacy\nALTER TABLE users DROP COLUMN legacy;");

        var result = await DeployAsync("1.0.0", db);

        Assert.True(result.Succeeded, result.Error);
        var record = Store.Find(ReleaseId.Parse(result.Release))!;
        Assert.Equal(["0001_users.sql", "0002_drop_legacy.sql"], record.Migrations);
        var note = Assert.Single(record.SafetyAssured!);
        Assert.Equal("0002_drop_legacy.sql", note.File);
        Assert.Equal(2, note.Line);
        Assert.Equal("no release since 20261101 reads users.legacy", note.Reason);
        var json = await File.ReadAllTextAsync(Path.Combine(Root, ".cutover", "releases", result.Release + ".json"));
        Assert.Contains("no release since 20261101 reads users.legacy", json);
        Assert.Contains(result.Release, await PostgresServer.ScalarAsync<string>(db, "SELECT applied_by FROM cutover_migrations WHERE name = '0002_drop_legacy.sql'"));
    }

    [Fact]
    public async Task The_cli_lints_verifies_migrates_and_shows_status()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        await PostgresServer.ExecuteAsync(db, "CREATE TABLE users (id int PRIMARY KEY, name varchar(20))");
        Migration("0001_widen.sql", "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN name TYPE varchar(50);");
        Migration("0002_bigint.sql", "SET lock_timeout = '2s';\nALTER TABLE users ALTER COLUMN id TYPE bigint;");
        AppFactory.WriteConfig(_dir.Path, Root, "migrations:\n  dir: db/migrations\n  database_url_env: SHOP_DB\n");
        var env = new Dictionary<string, string> { ["SHOP_DB"] = db };

        // Static lint: both type changes are flagged
        var lint = await CutoverCli.RunAsync(_dir.Path, env, "migrations", "lint", "--format", "json");
        Assert.Equal(1, lint.ExitCode);
        var findings = JsonDocument.Parse(lint.Stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(2, findings.Count(f => f.GetProperty("rule").GetString() == "changing-column-type"));

        // Verified: the widening is gone (no rewrite), the bigint change stays with the observed lock and rewrite
        var verified = await CutoverCli.RunAsync(_dir.Path, env, "migrations", "lint", "--format", "json", "--verify", db);
        Assert.Equal(1, verified.ExitCode);
        var kept = Assert.Single(JsonDocument.Parse(verified.Stdout).RootElement.EnumerateArray());
        Assert.EndsWith("0002_bigint.sql", kept.GetProperty("file").GetString());
        Assert.Equal(2, kept.GetProperty("line").GetInt32());
        Assert.Equal("ACCESS EXCLUSIVE", kept.GetProperty("verified_lock").GetString());
        Assert.True(kept.GetProperty("rewrite").GetBoolean());

        // migrate refuses while lint errors remain, applies once they are excluded, and status shows it
        var refused = await CutoverCli.RunAsync(_dir.Path, env, "migrate");
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("nothing was applied", refused.Stderr);
        AppFactory.WriteConfig(_dir.Path, Root, "migrations:\n  dir: db/migrations\n  database_url_env: SHOP_DB\n  lint: off\n");
        var migrate = await CutoverCli.RunAsync(_dir.Path, env, "migrate");
        Assert.True(migrate.ExitCode == 0, migrate.All);
        Assert.Contains("applied 2 migrations", migrate.Stdout);
        var status = await CutoverCli.RunAsync(_dir.Path, env, "migrations", "status", "--json");
        Assert.Equal(0, status.ExitCode);
        Assert.All(JsonDocument.Parse(status.Stdout).RootElement.EnumerateArray(), r => Assert.Equal("applied", r.GetProperty("status").GetString()));

        var missing = await CutoverCli.RunAsync(_dir.Path, "migrate");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("SHOP_DB is not set", missing.Stderr);
    }
}
