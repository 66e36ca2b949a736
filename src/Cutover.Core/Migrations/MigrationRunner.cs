using System.Diagnostics;
using System.Globalization;
using Cutover.Config;
using Cutover.Migrations.Sql;
using Npgsql;

namespace Cutover.Migrations;

public sealed record MigrationRunOptions
{
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(5);
    public TimeSpan StatementTimeout { get; init; } = TimeSpan.Zero;
    public int LockRetries { get; init; } = 5;
    /// <summary>The first wait after a lock timeout; it doubles each time, with jitter.</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);
    /// <summary>Who applied it, for the history table (user@host, and the release when a deploy runs it).</summary>
    public string AppliedBy { get; init; } = $"{Environment.UserName}@{Environment.MachineName}";

    public static MigrationRunOptions From(MigrationsConfig config) => new()
    {
        LockTimeout = config.LockTimeout,
        StatementTimeout = config.StatementTimeout,
        LockRetries = config.LockRetries,
    };
}

public sealed record MigrationRunResult(IReadOnlyList<string> Applied, IReadOnlyList<string> AlreadyApplied, string? Error)
{
    public bool Succeeded => Error is null;
}

/// <summary>
/// Applies pending migrations in name order, once, under an advisory lock. Each file runs with lock_timeout and
/// statement_timeout set; a lock timeout is retried with backoff. A file's statements run in one transaction
/// together with its history row, except statements PostgreSQL refuses inside one (CREATE INDEX CONCURRENTLY
/// and the like), which run on their own between transactional groups.
/// </summary>
public sealed class MigrationRunner(string connectionString, MigrationRunOptions options, Action<string> report)
{
    private const string LockNotAvailable = "55P03";

    public async Task<IReadOnlyList<(MigrationFile File, AppliedMigration? Applied)>> StatusAsync(IReadOnlyList<MigrationFile> files, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        var applied = (await new MigrationHistory(connection).ReadAsync(cancellationToken)).ToDictionary(a => a.Name);
        return files.Select(f => (f, applied.GetValueOrDefault(f.Name))).ToList();
    }

    public async Task<MigrationRunResult> RunAsync(IReadOnlyList<MigrationFile> files, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        var history = new MigrationHistory(connection);
        if (!await history.TryLockAsync(cancellationToken))
        {
            report("another migration runner holds the lock on this database; waiting for it to finish");
            await history.LockAsync(cancellationToken);
        }
        try
        {
            await history.EnsureTableAsync(cancellationToken);
            var applied = (await history.ReadAsync(cancellationToken)).ToDictionary(a => a.Name);
            foreach (var file in files)
                if (applied.TryGetValue(file.Name, out var row) && row.Checksum != file.Checksum)
                    return new MigrationRunResult([], [], $"{file.Path}: changed after it was applied (checksum {Short(row.Checksum)} applied {row.AppliedAt:yyyy-MM-dd HH:mm} by {row.AppliedBy}, now {Short(file.Checksum)}); write a new migration instead of editing an applied one");

            var done = new List<string>();
            var skipped = files.Where(f => applied.ContainsKey(f.Name)).Select(f => f.Name).ToList();
            foreach (var file in files.Where(f => !applied.ContainsKey(f.Name)))
            {
                var error = await ApplyAsync(connection, history, file, cancellationToken);
                if (error is not null) return new MigrationRunResult(done, skipped, error);
                done.Add(file.Name);
            }
            return new MigrationRunResult(done, skipped, null);
        }
        finally
        {
            if (connection.State == System.Data.ConnectionState.Open)
                await history.UnlockAsync(CancellationToken.None);
        }
    }

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new NpgsqlConnection(connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            return connection;
        }
        catch (Exception e) when (e is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            await connection.DisposeAsync();
            throw new DeployException($"could not connect to the database ({connection.Host}:{connection.Port}/{connection.Database}): {e.Message}");
        }
    }

    private async Task<string?> ApplyAsync(NpgsqlConnection connection, MigrationHistory history, MigrationFile file, CancellationToken cancellationToken)
    {
        IReadOnlyList<SqlStatement> statements;
        try
        {
            statements = SqlScript.Split(file.Text);
        }
        catch (SqlSyntaxException e)
        {
            return $"{file.Path}:{e.Line}:{e.Column}: {e.Message}";
        }
        var clock = Stopwatch.StartNew();
        await Execute(connection, $"SET lock_timeout = {Milliseconds(options.LockTimeout)}", cancellationToken);
        await Execute(connection, $"SET statement_timeout = {Milliseconds(options.StatementTimeout)}", cancellationToken);

        // A file with its own BEGIN/COMMIT runs as written, once: a retry inside its transaction could not undo what it did.
        var ownTransactions = statements.Any(s => s.IsTransactionControl);
        if (ownTransactions)
        {
            try
            {
                foreach (var statement in statements) await Execute(connection, statement.Text, cancellationToken);
            }
            catch (PostgresException e)
            {
                await Execute(connection, "ROLLBACK", CancellationToken.None);
                return $"{file.Path}: {e.Severity} {e.SqlState}: {e.MessageText} (the file manages its own transactions; what it committed stays applied, the file is not recorded)";
            }
            await history.RecordAsync(file, clock.Elapsed, options.AppliedBy, cancellationToken);
            report($"{file.Name} applied in {clock.Elapsed.TotalMilliseconds:0} ms ({statements.Count} statements, its own transactions)");
            return null;
        }

        var groups = Group(statements);
        var recorded = false;
        for (var g = 0; g < groups.Count; g++)
        {
            var group = groups[g];
            var wrap = !group[0].CannotRunInTransaction;
            var recordHere = wrap && g == groups.Count - 1;
            var error = await WithLockRetriesAsync(file, async () =>
            {
                await using var transaction = wrap ? await connection.BeginTransactionAsync(cancellationToken) : null;
                foreach (var statement in group)
                {
                    try
                    {
                        await Execute(connection, statement.Text, cancellationToken);
                    }
                    catch (PostgresException e)
                    {
                        throw new StatementFailedException(statement, e);
                    }
                }
                if (recordHere) await history.RecordAsync(file, clock.Elapsed, options.AppliedBy, cancellationToken);
                if (transaction is not null) await transaction.CommitAsync(cancellationToken);
            }, cancellationToken);
            if (error is not null)
            {
                var partial = groups.Take(g).Sum(x => x.Length);
                return partial == 0 ? error : $"{error} ({partial} earlier statements of {file.Name} ran outside one transaction and stay applied; the file is not recorded, so the next run starts it again)";
            }
            recorded |= recordHere;
        }
        // The last group ran outside a transaction (or the file was empty): the history row comes after it.
        if (!recorded) await history.RecordAsync(file, clock.Elapsed, options.AppliedBy, cancellationToken);
        report($"{file.Name} applied in {clock.Elapsed.TotalMilliseconds:0} ms ({statements.Count} statements)");
        return null;
    }

    /// <summary>Runs one group; on a lock timeout the group (rolled back) is tried again after a growing, jittered wait.</summary>
    private async Task<string?> WithLockRetriesAsync(MigrationFile file, Func<Task> attempt, CancellationToken cancellationToken)
    {
        var delay = options.RetryDelay;
        for (var tries = 1; ; tries++)
        {
            try
            {
                await attempt();
                return null;
            }
            catch (StatementFailedException e) when (e.Postgres.SqlState == LockNotAvailable && tries < options.LockRetries)
            {
                var wait = delay * (0.75 + Random.Shared.NextDouble() / 2);
                report($"{file.Name}:{e.Statement.Line}: lock not granted within lock_timeout ({Milliseconds(options.LockTimeout)}); try {tries + 1} of {options.LockRetries} in {wait.TotalSeconds:0.0} s");
                await Task.Delay(wait, cancellationToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
            catch (StatementFailedException e)
            {
                var (line, column) = Position(file.Text, e.Statement, e.Postgres.Position);
                var why = e.Postgres.SqlState == LockNotAvailable
                    ? $"lock not granted within lock_timeout after {options.LockRetries} tries: {e.Postgres.MessageText}"
                    : $"{e.Postgres.Severity} {e.Postgres.SqlState}: {e.Postgres.MessageText}";
                return $"{file.Path}:{line}:{column}: {why}";
            }
        }
    }

    /// <summary>Consecutive statements that may share a transaction, and each one that may not, alone.</summary>
    private static List<SqlStatement[]> Group(IReadOnlyList<SqlStatement> statements)
    {
        var groups = new List<SqlStatement[]>();
        var current = new List<SqlStatement>();
        foreach (var statement in statements)
        {
            if (!statement.CannotRunInTransaction)
            {
                current.Add(statement);
                continue;
            }
            if (current.Count > 0) groups.Add([.. current]);
            current.Clear();
            groups.Add([statement]);
        }
        if (current.Count > 0) groups.Add([.. current]);
        return groups;
    }

    /// <summary>PostgreSQL's error position is a 1-based character offset into the statement; this maps it into the file.</summary>
    internal static (int Line, int Column) Position(string text, SqlStatement statement, int position)
    {
        if (position <= 0) return (statement.Line, statement.Column);
        var offset = Math.Min(text.Length, statement.Offset + position - 1);
        int line = 1, column = 1;
        for (var i = 0; i < offset; i++)
        {
            if (text[i] == '\n') { line++; column = 1; }
            else column++;
        }
        return (line, column);
    }

    private static async Task Execute(NpgsqlConnection connection, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static string Milliseconds(TimeSpan value) => $"'{((long)value.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)}ms'";

    private static string Short(string checksum) => checksum[..Math.Min(12, checksum.Length)];

    private sealed class StatementFailedException(SqlStatement statement, PostgresException postgres) : Exception(postgres.Message, postgres)
    {
        public SqlStatement Statement { get; } = statement;
        public PostgresException Postgres { get; } = postgres;
    }
}
