using Cutover.Migrations;
using Cutover.Migrations.Verify;
using Cutover.Tests.Support;

namespace Cutover.Tests.Migrations;

/// <summary>--verify: locks and rewrites as a real PostgreSQL reports them, not as a linter guesses.</summary>
[Collection(PostgresCollection.Name)]
[Trait(Needs.Trait, Needs.Postgres)]
public sealed class MigrationVerifierTests(PostgresFixture pg) : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private async Task<IReadOnlyList<StatementFacts>> VerifyAsync(string sql)
    {
        var db = await pg.Server.CreateDatabaseAsync();
        await PostgresServer.ExecuteAsync(db, """
            CREATE TABLE users (id int PRIMARY KEY, name varchar(20), email varchar);
            CREATE TABLE accounts (id int PRIMARY KEY, name text);
            INSERT INTO users SELECT g, 'n' || g, 'e' || g FROM generate_series(1, 1000) g;
            """);
        File.WriteAllText(_dir.Combine("0001_change.sql"), sql);
        var facts = await new MigrationVerifier(db).VerifyAsync(MigrationDirectory.Read(_dir.Path), CancellationToken.None);
        // Everything was rolled back: the table is as it was.
        Assert.Equal("integer", await PostgresServer.ScalarAsync<string>(db, "SELECT data_type FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'id'"));
        Assert.Equal(0L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM pg_event_trigger"));
        return facts;
    }

    [Fact]
    public async Task Int_to_bigint_takes_access_exclusive_and_rewrites_the_table()
    {
        var fact = Assert.Single(await VerifyAsync("ALTER TABLE users ALTER COLUMN id TYPE bigint;"));
        Assert.Null(fact.Error);
        Assert.Equal("ACCESS EXCLUSIVE", fact.StrongestLock);
        Assert.Contains(fact.Locks, l => l is { Relation: "users", Mode: "ACCESS EXCLUSIVE" });
        var rewrite = Assert.Single(fact.Rewrites);
        Assert.Equal("users", rewrite.Table);
        Assert.Equal("column type", rewrite.Reason);
    }

    [Theory]
    [InlineData("ALTER TABLE users ALTER COLUMN name TYPE varchar(50);")]
    [InlineData("ALTER TABLE users ALTER COLUMN email TYPE text;")]
    [InlineData("ALTER TABLE users ADD COLUMN score int DEFAULT 5;")]
    [InlineData("ALTER TABLE users ADD COLUMN seen timestamptz DEFAULT now();")]
    public async Task Changes_postgres_makes_without_a_rewrite_show_none(string sql)
    {
        var fact = Assert.Single(await VerifyAsync(sql));
        Assert.Null(fact.Error);
        Assert.Equal("ACCESS EXCLUSIVE", fact.StrongestLock);
        Assert.Empty(fact.Rewrites);
    }

    [Theory]
    [InlineData("ALTER TABLE users ADD COLUMN token uuid DEFAULT gen_random_uuid();", "default value")]
    [InlineData("ALTER TABLE users ADD COLUMN upper_name text GENERATED ALWAYS AS (upper(name)) STORED;", "default value")]
    public async Task Volatile_defaults_and_stored_generated_columns_rewrite(string sql, string reason)
    {
        var fact = Assert.Single(await VerifyAsync(sql));
        Assert.Equal(reason, Assert.Single(fact.Rewrites).Reason);
    }

    [Fact]
    public async Task Each_statement_reports_its_own_locks_after_the_ones_before_it_ran()
    {
        var facts = await VerifyAsync("""
            SET lock_timeout = '1s';
            CREATE TABLE orders (id int PRIMARY KEY, user_id int);
            CREATE INDEX CONCURRENTLY users_email ON users (email);
            CREATE INDEX accounts_name ON accounts (name);
            ALTER TABLE orders ADD CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES users (id) NOT VALID;
            ALTER TABLE users ADD COLUMN x int;
            CREATE INDEX users_x ON users (x);
            """);
        Assert.Equal(7, facts.Count);
        Assert.Equal("SHARE UPDATE EXCLUSIVE", facts[2].StrongestLock);
        Assert.Contains("CONCURRENTLY", facts[2].Note);
        Assert.Equal([new TakenLock("accounts", "SHARE")], facts[3].Locks);
        Assert.Equal(4, facts[3].Line);
        // orders is new in this migration, so only the lock on users counts
        Assert.Contains(new TakenLock("users", "SHARE ROW EXCLUSIVE"), facts[4].Locks);
        Assert.DoesNotContain(facts[4].Locks, l => l.Relation == "orders");
        Assert.Equal("SHARE ROW EXCLUSIVE", facts[4].StrongestLock);
        Assert.Equal("ACCESS EXCLUSIVE", facts[5].StrongestLock);
        // held already by the ALTER before it: said so, not passed off as "no lock"
        Assert.Empty(facts[6].Locks);
        Assert.Contains("already hold", facts[6].Note);
    }

    [Fact]
    public async Task A_statement_that_fails_is_reported_with_the_error_and_the_rest_still_run()
    {
        var facts = await VerifyAsync("ALTER TABLE nope ADD COLUMN x int;\nALTER TABLE users ADD COLUMN x int;");
        Assert.Contains("42P01", facts[0].Error);
        Assert.Null(facts[1].Error);
        Assert.Equal("ACCESS EXCLUSIVE", facts[1].StrongestLock);
    }
}
