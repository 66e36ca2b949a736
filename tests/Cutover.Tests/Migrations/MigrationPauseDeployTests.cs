using System.Collections.Concurrent;
using System.Text.Json;
using Cutover.Tests.Support;
using Npgsql;
using Xunit.Abstractions;

namespace Cutover.Tests.Migrations;

/// <summary>
/// migrations.pause through the real CLI and agent, a rolling Node app under load and a real PostgreSQL: while an
/// ALTER TABLE waits for a lock the test holds, requests are held (answered after the resume, not failed), and a
/// migration that fails never leaves the app paused.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(Needs.Trait, Needs.Postgres)]
public sealed class MigrationPauseDeployTests(PostgresFixture pg, ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _dir = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private string MigrationsDir => _dir.Combine("db");

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

    // monitor 200 ms: the default 5 s per replaced instance came after the migration and was only waited out.
    private string Config(int port) => _dir.WriteNodeConfig(port, "rolling",
        $"migrations:\n  dir: {MigrationsDir}\n  database_url_env: SHOP_DB\n  lock_timeout: 10s\n  pause: true\n  pause_timeout: 30s\nrolling:\n  monitor: 200ms\n");

    private System.Diagnostics.Process Deploy(string config, string db, Action<string> onLine)
    {
        var start = _dir.StartInfo("deploy", _dir.Source, "-c", config);
        start.Environment["SHOP_DB"] = db;
        return CutoverCli.Start(start, onLine);
    }

    private async Task<(int Code, string Output)> DeployAsync(string config, string db)
    {
        var lines = new ConcurrentQueue<string>();
        using var deploy = Deploy(config, db, lines.Enqueue);
        await deploy.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return (deploy.ExitCode, string.Join("\n", lines));
    }

    private async Task<JsonElement> TrafficAsync(string config)
    {
        var status = await _dir.Cli("status", "--json", "-c", config);
        return JsonDocument.Parse(status.Stdout).RootElement.GetProperty("agent").GetProperty("traffic");
    }

    [Fact]
    public async Task Requests_are_held_while_an_alter_table_waits_for_its_lock_and_none_fails()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        var port = HealthServer.FreePort();
        var config = Config(port);
        Migration("0001_items.sql", "CREATE TABLE items (id bigint PRIMARY KEY);");
        _dir.WriteVersion("1");
        var (firstCode, firstOutput) = await DeployAsync(config, db);
        Assert.True(firstCode == 0, firstOutput);
        // A first release has nothing serving yet: no pause.
        Assert.Contains("nothing serves the app yet", firstOutput);

        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 8, maxDuration: TimeSpan.FromMinutes(2));
        // The test's transaction holds ACCESS SHARE on items: the migration's ALTER TABLE (ACCESS EXCLUSIVE) waits for it.
        await using var reader = new NpgsqlConnection(db);
        await reader.OpenAsync();
        await using var transaction = await reader.BeginTransactionAsync();
        await using (var select = new NpgsqlCommand("SELECT count(*) FROM items", reader, transaction)) await select.ExecuteScalarAsync();

        Migration("0002_note.sql", "ALTER TABLE items ADD COLUMN note text;");
        _dir.WriteVersion("2");
        var lines = new ConcurrentQueue<string>();
        using var deploy = Deploy(config, db, lines.Enqueue);
        await Wait.UntilAsync(() => lines.Any(l => l.Contains("new requests held")), TimeSpan.FromSeconds(60), "the deploy to pause the app");
        var pausedMs = load.NowMs;
        await Wait.UntilAsync(async () => await PostgresServer.ScalarAsync<long>(db,
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'items'::regclass AND mode = 'AccessExclusiveLock'") == 1,
            TimeSpan.FromSeconds(10), "the ALTER TABLE to wait for its lock");
        await Task.Delay(1000);
        Assert.False(deploy.HasExited, string.Join("\n", lines));
        var releasingMs = load.NowMs;
        await transaction.CommitAsync();

        await deploy.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        await Task.Delay(500);
        var samples = await load.StopAsync();
        var text = string.Join("\n", lines);
        output.WriteLine(text);
        Assert.True(deploy.ExitCode == 0, text);
        output.WriteLine($"{samples.Count} requests, {samples.Count(s => s.Status != 200)} failed; paused at {pausedMs:0} ms, lock released at {releasingMs:0} ms");

        Assert.Equal(0, samples.Count(s => s.Status != 200));
        // Every request in flight across the lock wait was held: none answered before the lock went, each answered after.
        var held = samples.Where(s => s.EndMs > pausedMs + 200 && s.StartMs < releasingMs).ToList();
        Assert.Equal(8, held.Count);
        Assert.All(held, s => Assert.True(s.EndMs >= releasingMs && s.EndMs - s.StartMs >= 1000,
            $"a request started at {s.StartMs:0} ms was answered at {s.EndMs:0} ms, while the migration waited ({pausedMs:0} to {releasingMs:0} ms)"));
        Assert.Contains("held requests released", text);
        Assert.Contains(samples, s => s.Version == "2");
        Assert.Equal(1L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'note'"));
        Assert.Equal(JsonValueKind.Null, (await TrafficAsync(config)).GetProperty("paused_until").ValueKind);
    }

    [Fact]
    public async Task A_failing_migration_resumes_the_app_at_once_instead_of_leaving_it_paused()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        var port = HealthServer.FreePort();
        var config = Config(port);
        Migration("0001_items.sql", "CREATE TABLE items (id bigint PRIMARY KEY);");
        _dir.WriteVersion("1");
        var (firstCode, firstOutput) = await DeployAsync(config, db);
        Assert.True(firstCode == 0, firstOutput);

        Migration("0002_broken.sql", "ALTER TABLE items ADD COLUMN note text;\nUPDATE items SET note = no_such_column;");
        _dir.WriteVersion("2");
        var (code, text) = await DeployAsync(config, db);
        output.WriteLine(text);
        Assert.Equal(1, code);
        Assert.Contains("new requests held", text);
        Assert.Contains("held requests released", text);
        // Not paused: answered at once (the pause's 30 s timeout would otherwise hold it), by the release that still serves.
        Assert.Equal(JsonValueKind.Null, (await TrafficAsync(config)).GetProperty("paused_until").ValueKind);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.StartsWith("hello from 1", await _http.GetStringAsync($"http://127.0.0.1:{port}/"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"answered after {clock.Elapsed}");
    }
}
