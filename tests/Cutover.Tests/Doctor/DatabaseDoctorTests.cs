using Cutover.Tests.Migrations;
using Cutover.Tests.Support;

namespace Cutover.Tests.Doctor;

/// <summary>The database check: DATABASE_URL reachable and pg_version the server's, against a real PostgreSQL.</summary>
[Collection(PostgresCollection.Name)]
[Trait(Needs.Trait, Needs.Postgres)]
public sealed class DatabaseDoctorTests(PostgresFixture pg) : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private void Config(int pgVersion)
    {
        Directory.CreateDirectory(_dir.Combine("root"));
        Directory.CreateDirectory(_dir.Combine("db"));
        File.WriteAllText(_dir.Combine("cutover.yml"), $"""
            app: shop
            root: {_dir.Combine("root")}
            migrations:
              dir: db
              database_url_env: SHOP_DB
              pg_version: {pgVersion}
            """);
    }

    private async Task<int> ServerMajorAsync() =>
        int.Parse(await PostgresServer.ScalarAsync<string>(pg.Server.Admin, "SHOW server_version_num")) / 10000;

    [Fact]
    public async Task A_reachable_database_of_the_configured_version_is_ok()
    {
        Config(await ServerMajorAsync());
        var run = await DoctorRun.RunAsync(_dir.Path, new Dictionary<string, string> { ["SHOP_DB"] = $"postgres://postgres@127.0.0.1:{pg.Server.Port}/postgres", ["CUTOVER_HOME"] = _dir.Combine("home") });
        Assert.Equal("ok", run["database"].Status);
        Assert.Contains($"127.0.0.1:{pg.Server.Port}/postgres answers, PostgreSQL {await ServerMajorAsync()}", run["database"].Message);
    }

    [Fact]
    public async Task A_pg_version_other_than_the_servers_is_a_warning_naming_it()
    {
        var major = await ServerMajorAsync();
        Config(major == 13 ? 14 : 13);
        var run = await DoctorRun.RunAsync(_dir.Path, new Dictionary<string, string> { ["SHOP_DB"] = $"postgres://postgres@127.0.0.1:{pg.Server.Port}/postgres", ["CUTOVER_HOME"] = _dir.Combine("home") });
        Assert.Equal("warning", run["database"].Status);
        Assert.Equal($"set migrations.pg_version: {major}", run["database"].Fix);
    }

    [Fact]
    public async Task An_unreachable_database_is_an_error()
    {
        Config(await ServerMajorAsync());
        var unused = HealthServer.FreePort();
        var run = await DoctorRun.RunAsync(_dir.Path, new Dictionary<string, string> { ["SHOP_DB"] = $"postgres://postgres@127.0.0.1:{unused}/postgres", ["CUTOVER_HOME"] = _dir.Combine("home") });
        Assert.Equal(1, run.Result.ExitCode);
        Assert.Equal("error", run["database"].Status);
        Assert.Contains($"SHOP_DB (127.0.0.1:{unused}/postgres) is unreachable", run["database"].Message);
    }

    [Fact]
    public async Task An_unset_database_variable_is_an_error()
    {
        Config(await ServerMajorAsync());
        var run = await DoctorRun.RunAsync(_dir.Path, new Dictionary<string, string> { ["CUTOVER_HOME"] = _dir.Combine("home") });
        Assert.Equal(1, run.Result.ExitCode);
        Assert.Equal("SHOP_DB is not set", run["database"].Message);
    }
}
