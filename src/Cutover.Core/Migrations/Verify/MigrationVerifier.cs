using Cutover.Migrations.Sql;
using Npgsql;

namespace Cutover.Migrations.Verify;

/// <summary>
/// Runs each pending statement on a real PostgreSQL inside a transaction that is always rolled back, and reads
/// what it did: the locks it took (pg_locks for this backend) and the tables it rewrote (a table_rewrite event
/// trigger, created inside the same transaction, so it never outlives the check). Each statement gets a
/// transaction of its own, after replaying the statements before it, so the locks reported are its own and
/// not those left by an earlier statement. Use a scratch copy of the database: the statements take their locks.
/// </summary>
public sealed class MigrationVerifier(string connectionString)
{
    private const string RewritesTable = "cutover_verify_rewrites";

    public async Task<IReadOnlyList<StatementFacts>> VerifyAsync(IReadOnlyList<MigrationFile> files, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new DeployException($"--verify could not connect to the database: {e.Message}");
        }
        var superuser = await Scalar(connection, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user", cancellationToken) is true;
        var applied = (await new MigrationHistory(connection).ReadAsync(cancellationToken)).Select(a => a.Name).ToHashSet();

        var facts = new List<StatementFacts>();
        var before = new List<string>(); // pending statements of earlier files, replayed before each check
        foreach (var file in files.Where(f => !applied.Contains(f.Name)))
        {
            IReadOnlyList<SqlStatement> statements;
            try
            {
                statements = SqlScript.Split(file.Text);
            }
            catch (SqlSyntaxException)
            {
                continue; // the linter reports it
            }
            var runnable = statements.Where(s => !s.IsTransactionControl).ToList();
            for (var i = 0; i < runnable.Count; i++)
            {
                var prefix = before.Concat(runnable.Take(i).Select(InTransaction).OfType<string>()).ToList();
                facts.Add(await CheckAsync(connection, file, runnable[i], prefix, superuser, cancellationToken));
            }
            before.AddRange(runnable.Select(InTransaction).OfType<string>());
        }
        return facts;
    }

    /// <summary>
    /// The form of a statement that can run inside the check's transaction: CONCURRENTLY dropped (the schema
    /// change is the same; the lock is not, and is reported from the documentation), or null when it has none.
    /// </summary>
    private static string? InTransaction(SqlStatement statement)
    {
        if (!statement.CannotRunInTransaction) return statement.Text;
        for (var i = 0; i < statement.Tokens.Count; i++)
        {
            if (!statement.IsKeyword(i, "CONCURRENTLY")) continue;
            var at = statement.Tokens[i].Offset - statement.Offset;
            return statement.Text[..at] + statement.Text[(at + "CONCURRENTLY".Length)..];
        }
        return null;
    }

    private async Task<StatementFacts> CheckAsync(NpgsqlConnection connection, MigrationFile file, SqlStatement statement, IReadOnlyList<string> prefix,
        bool superuser, CancellationToken cancellationToken)
    {
        var sql = InTransaction(statement);
        if (sql is null)
            return new StatementFacts(file.Name, statement.Line, statement.Column, [], [], "not run: PostgreSQL runs it only outside a transaction", null);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        try
        {
            // The check must not queue behind live traffic, nor make live traffic queue behind it for long.
            await Execute(connection, "SET LOCAL lock_timeout = '2s'", cancellationToken);
            await Execute(connection, $"CREATE TEMP TABLE {RewritesTable} (relid oid, reason int) ON COMMIT DROP", cancellationToken);
            if (superuser)
            {
                await Execute(connection, $"""
                    CREATE FUNCTION pg_temp.cutover_note_rewrite() RETURNS event_trigger LANGUAGE plpgsql AS $f$
                    BEGIN INSERT INTO pg_temp.{RewritesTable} VALUES (pg_event_trigger_table_rewrite_oid(), pg_event_trigger_table_rewrite_reason()); END $f$
                    """, cancellationToken);
                await Execute(connection, "CREATE EVENT TRIGGER cutover_verify_rewrite ON table_rewrite EXECUTE FUNCTION pg_temp.cutover_note_rewrite()", cancellationToken);
            }
            // Relations that exist before the migration: a table it creates itself blocks nobody.
            var existing = await RelationsAsync(connection, cancellationToken);
            foreach (var earlier in prefix)
            {
                await Execute(connection, "SAVEPOINT cutover_prefix", cancellationToken);
                try
                {
                    await Execute(connection, earlier, cancellationToken);
                }
                catch (PostgresException)
                {
                    await Execute(connection, "ROLLBACK TO SAVEPOINT cutover_prefix", cancellationToken); // reported at its own check
                }
            }
            var locksBefore = await LocksAsync(connection, cancellationToken);
            await Execute(connection, $"DELETE FROM {RewritesTable}", cancellationToken);
            try
            {
                await Execute(connection, sql, cancellationToken);
            }
            catch (PostgresException e)
            {
                return new StatementFacts(file.Name, statement.Line, statement.Column, [], [], null, $"{e.SqlState}: {e.MessageText}");
            }
            var locks = (await LocksAsync(connection, cancellationToken))
                .Where(l => !locksBefore.Contains(l) && existing.ContainsKey(l.Oid))
                .Select(l => new TakenLock(existing[l.Oid].Name, LockModes.FromPgLocks(l.Mode)))
                .Distinct()
                .ToList();
            var rewrites = superuser
                ? await EventRewritesAsync(connection, existing, cancellationToken)
                : await RelfilenodeRewritesAsync(connection, existing, cancellationToken);
            var note = statement.CannotRunInTransaction ? "ran without CONCURRENTLY to follow the schema; the concurrent form takes SHARE UPDATE EXCLUSIVE" : null;
            if (statement.CannotRunInTransaction)
                locks = locks.Select(l => l with { Mode = "SHARE UPDATE EXCLUSIVE" }).Distinct().ToList();
            var heldEarlier = locksBefore.Where(l => existing.ContainsKey(l.Oid)).Select(l => $"{LockModes.FromPgLocks(l.Mode)} on {existing[l.Oid].Name}").Distinct().ToList();
            if (locks.Count == 0 && heldEarlier.Count > 0)
                note = (note is null ? "" : note + "; ") + $"earlier statements of this check already hold {string.Join(", ", heldEarlier)}, and a lock taken twice shows once, so this statement's own locks may be missing";
            return new StatementFacts(file.Name, statement.Line, statement.Column, locks, rewrites, note, null);
        }
        finally
        {
            await transaction.RollbackAsync(CancellationToken.None);
        }
    }

    private sealed record Relation(string Name, long Filenode, char Kind);

    private static async Task<Dictionary<uint, Relation>> RelationsAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var relations = new Dictionary<uint, Relation>();
        await using var command = new NpgsqlCommand("""
            SELECT c.oid, c.oid::regclass::text, c.relfilenode, c.relkind FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
            """, connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            relations[reader.GetFieldValue<uint>(0)] = new Relation(reader.GetString(1), reader.GetFieldValue<uint>(2), reader.GetChar(3));
        return relations;
    }

    private sealed record HeldLock(uint Oid, string Mode);

    private static async Task<HashSet<HeldLock>> LocksAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var locks = new HashSet<HeldLock>();
        await using var command = new NpgsqlCommand(
            "SELECT relation, mode FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' AND granted AND relation IS NOT NULL", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            locks.Add(new HeldLock(reader.GetFieldValue<uint>(0), reader.GetString(1)));
        return locks;
    }

    private static async Task<List<TableRewrite>> EventRewritesAsync(NpgsqlConnection connection, Dictionary<uint, Relation> existing, CancellationToken cancellationToken)
    {
        var rewrites = new List<TableRewrite>();
        await using var command = new NpgsqlCommand($"SELECT relid, reason FROM {RewritesTable}", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var oid = reader.GetFieldValue<uint>(0);
            if (existing.TryGetValue(oid, out var relation)) rewrites.Add(new TableRewrite(relation.Name, Reason(reader.GetInt32(1))));
        }
        return rewrites;
    }

    private static async Task<List<TableRewrite>> RelfilenodeRewritesAsync(NpgsqlConnection connection, Dictionary<uint, Relation> existing, CancellationToken cancellationToken)
    {
        var now = await RelationsAsync(connection, cancellationToken);
        return existing.Where(e => e.Value.Kind is 'r' or 'm' && now.TryGetValue(e.Key, out var after) && after.Filenode != e.Value.Filenode)
            .Select(e => new TableRewrite(e.Value.Name, "relfilenode changed")).ToList();
    }

    /// <summary>The bits of pg_event_trigger_table_rewrite_reason(), in words.</summary>
    private static string Reason(int bits)
    {
        var reasons = new List<string>();
        if ((bits & 1) != 0) reasons.Add("persistence changed");
        if ((bits & 2) != 0) reasons.Add("default value");
        if ((bits & 4) != 0) reasons.Add("column type");
        if ((bits & 8) != 0) reasons.Add("access method");
        return reasons.Count == 0 ? $"reason {bits}" : string.Join(", ", reasons);
    }

    private static async Task Execute(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static async Task<object?> Scalar(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return await command.ExecuteScalarAsync(cancellationToken);
    }
}
