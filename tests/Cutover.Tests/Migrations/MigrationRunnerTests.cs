using Cutover.Migrations;
using Cutover.Tests.Support;
using Npgsql;

namespace Cutover.Tests.Migrations;

[Collection(PostgresCollection.Name)]
[Trait(Needs.Trait, Needs.Postgres)]
public sealed class MigrationRunnerTests(PostgresFixture pg) : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly List<string> _reports = [];

    public void Dispose() => _dir.Dispose();

    private void Write(string name, string sql) => File.WriteAllText(_dir.Combine(name), sql);

    private MigrationRunner Runner(string db, MigrationRunOptions? options = null) =>
        new(db, options ?? new MigrationRunOptions(), line => { lock (_reports) _reports.Add(line); });

    private IReadOnlyList<MigrationFile> Files() => MigrationDirectory.Read(_dir.Path);

    private static Task<long> Count(string db, string sql) => PostgresServer.ScalarAsync<long>(db, sql);

    [Fact]
    public async Task Pending_files_are_applied_in_order_once_and_a_second_run_does_nothing()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        Write("0002_add_email.sql", "ALTER TABLE users ADD COLUMN email text;");
        Write("0001_users.sql", "CREATE TABLE users (id bigint PRIMARY KEY, name text);\nINSERT INTO users VALUES (1, 'a');");

        var first = await Runner(db).RunAsync(Files(), CancellationToken.None);
        Assert.Null(first.Error);
        Assert.Equal(["0001_users.sql", "0002_add_email.sql"], first.Applied);

        var second = await Runner(db).RunAsync(Files(), CancellationToken.None);
        Assert.Null(second.Error);
        Assert.Empty(second.Applied);
        Assert.Equal(["0001_users.sql", "0002_add_email.sql"], second.AlreadyApplied);
        Assert.Equal(1, await Count(db, "SELECT count(*) FROM users"));
        Assert.Equal(2, await Count(db, "SELECT count(*) FROM cutover_migrations WHERE checksum <> '' AND duration_ms >= 0 AND applied_by LIKE '%@%'"));
    }

    [Fact]
    public async Task Two_runners_started_together_apply_each_file_once()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        // Not idempotent on purpose: applied twice, the INSERT would add a second row and CREATE TABLE would fail.
        Write("0001_slow.sql", "CREATE TABLE runs (at timestamptz);\nSELECT pg_sleep(1);\nINSERT INTO runs VALUES (now());");
        Write("0002_more.sql", "INSERT INTO runs VALUES (now());");

        var results = await Task.WhenAll(Runner(db).RunAsync(Files(), CancellationToken.None), Runner(db).RunAsync(Files(), CancellationToken.None));

        Assert.All(results, r => Assert.Null(r.Error));
        Assert.Equal(2, results.Sum(r => r.Applied.Count));
        Assert.Contains(results, r => r.Applied.Count == 0 && r.AlreadyApplied.Count == 2);
        Assert.Equal(2, await Count(db, "SELECT count(*) FROM runs"));
        Assert.Contains(_reports, r => r.Contains("another migration runner holds the lock"));
    }

    [Fact]
    public async Task A_failing_migration_stops_there_rolls_its_statements_back_and_the_history_stays_true()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        Write("0001_ok.sql", "CREATE TABLE a (id int);");
        Write("0002_bad.sql", "CREATE TABLE b (id int);\n\nALTER TABLE a\n  ADD COLUMN x int REFERENCES missing (id);");
        Write("0003_later.sql", "CREATE TABLE c (id int);");

        var result = await Runner(db).RunAsync(Files(), CancellationToken.None);

        Assert.Equal(["0001_ok.sql"], result.Applied);
        Assert.NotNull(result.Error);
        Assert.Contains("0002_bad.sql:3:1:", result.Error);
        Assert.Contains("42P01", result.Error);
        Assert.Equal(1, await Count(db, "SELECT count(*) FROM cutover_migrations"));
        Assert.Equal(0, await Count(db, "SELECT count(*) FROM pg_tables WHERE tablename IN ('b', 'c')"));

        // Fixed, the same run picks up where it stopped.
        Write("0002_bad.sql", "CREATE TABLE b (id int);");
        var again = await Runner(db).RunAsync(Files(), CancellationToken.None);
        Assert.Equal(["0002_bad.sql", "0003_later.sql"], again.Applied);
    }

    [Fact]
    public async Task An_error_names_the_line_and_column_postgres_points_at()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        Write("0001_typo.sql", "-- a comment\nCREATE TABLE t (id int);\nSELECT id,\n       nope\n  FROM t;");

        var result = await Runner(db).RunAsync(Files(), CancellationToken.None);

        Assert.Contains("0001_typo.sql:4:8: ERROR 42703: column \"nope\" does not exist", result.Error);
    }

    [Fact]
    public async Task An_applied_file_that_changed_is_an_error_and_nothing_runs()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        Write("0001_a.sql", "CREATE TABLE a (id int);");
        Assert.Null((await Runner(db).RunAsync(Files(), CancellationToken.None)).Error);
        Write("0001_a.sql", "CREATE TABLE a (id bigint);");
        Write("0002_b.sql", "CREATE TABLE b (id int);");

        var result = await Runner(db).RunAsync(Files(), CancellationToken.None);

        Assert.Contains("0001_a.sql: changed after it was applied", result.Error);
        Assert.Empty(result.Applied);
        Assert.Equal(0, await Count(db, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"));
    }

    [Fact]
    public async Task Statements_that_cannot_run_in_a_transaction_run_outside_one_and_the_rest_inside()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        Write("0001_t.sql", "CREATE TABLE t (id int, email text);");
        Write("0002_index.sql", "SET lock_timeout = '1s';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_email ON t (email);\nALTER TABLE t ADD COLUMN IF NOT EXISTS name text;");

        var result = await Runner(db).RunAsync(Files(), CancellationToken.None);

        Assert.Null(result.Error);
        Assert.Equal(1, await Count(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_email'"));
        Assert.Equal(1, await Count(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 't' AND column_name = 'name'"));
    }

    [Fact]
    public async Task A_lock_timeout_is_retried_with_backoff_until_the_lock_comes_free()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        await PostgresServer.ExecuteAsync(db, "CREATE TABLE busy (id int)");
        Write("0001_alter.sql", "ALTER TABLE busy ADD COLUMN x int;");

        await using (var holder = new NpgsqlConnection(db))
        {
            await holder.OpenAsync();
            await using var transaction = await holder.BeginTransactionAsync();
            await new NpgsqlCommand("LOCK TABLE busy IN ACCESS SHARE MODE", holder, transaction).ExecuteNonQueryAsync();
            var options = new MigrationRunOptions { LockTimeout = TimeSpan.FromMilliseconds(100), RetryDelay = TimeSpan.FromMilliseconds(200), LockRetries = 10 };
            var run = Runner(db, options).RunAsync(Files(), CancellationToken.None);
            await Task.Delay(700);
            Assert.False(run.IsCompleted);
            await transaction.CommitAsync();
            var result = await run;
            Assert.Null(result.Error);
        }
        Assert.Contains(_reports, r => r.Contains("0001_alter.sql:1: lock not granted within lock_timeout ('100ms'); try 2 of 10"));
        Assert.Equal(1, await Count(db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'busy' AND column_name = 'x'"));
    }

    [Fact]
    public async Task A_lock_that_never_comes_free_fails_after_the_last_try_and_records_nothing()
    {
        var db = await pg.Server.CreateDatabaseAsync();
        await PostgresServer.ExecuteAsync(db, "CREATE TABLE busy (id int)");
        Write("0001_alter.sql", "ALTER TABLE busy ADD COLUMN x int;");
        await using var holder = new NpgsqlConnection(db);
        await holder.OpenAsync();
        await using var transaction = await holder.BeginTransactionAsync();
        await new NpgsqlCommand("LOCK TABLE busy IN ACCESS SHARE MODE", holder, transaction).ExecuteNonQueryAsync();

        var options = new MigrationRunOptions { LockTimeout = TimeSpan.FromMilliseconds(50), RetryDelay = TimeSpan.FromMilliseconds(50), LockRetries = 3 };
        var result = await Runner(db, options).RunAsync(Files(), CancellationToken.None);

        Assert.Contains("0001_alter.sql:1:1: lock not granted within lock_timeout after 3 tries", result.Error);
        Assert.Equal(0, await Count(db, "SELECT count(*) FROM cutover_migrations"));
    }

    [Theory]
    [InlineData("0001_x.sql", "0001_x.sql")]
    [InlineData("notes.sql", null)]
    public void Migration_files_must_be_numbered(string name, string? accepted)
    {
        Write(name, "SELECT 1;");
        if (accepted is not null)
        {
            Assert.Equal(accepted, Assert.Single(Files()).Name);
            return;
        }
        var error = Assert.Throws<Cutover.DeployException>(() => Files());
        Assert.Contains("notes.sql: a migration file must be named NNNN_name.sql", error.Message);
    }

    [Theory]
    [InlineData("postgres://app:s%40cret@db.internal:6543/shop?sslmode=disable", "Host=db.internal", "Port=6543", "Username=app", "Password=s@cret", "Database=shop", "SSL Mode=Disable")]
    [InlineData("Host=localhost;Database=shop", "Host=localhost", "Database=shop")]
    public void Database_urls_and_connection_strings_both_work(string text, params string[] parts)
    {
        var connection = DatabaseUrl.ToConnectionString(text);
        Assert.All(parts, p => Assert.Contains(p, connection));
    }
}
