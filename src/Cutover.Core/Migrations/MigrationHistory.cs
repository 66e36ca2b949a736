using Npgsql;

namespace Cutover.Migrations;

/// <summary>One row of the history table: a migration that was applied, completely.</summary>
public sealed record AppliedMigration(string Name, string Checksum, DateTimeOffset AppliedAt, int DurationMs, string AppliedBy);

/// <summary>
/// The history table <c>cutover_migrations</c> and the advisory lock that serialises runners: two deploys,
/// or two hosts of a fleet, that start together apply each migration once.
/// </summary>
public sealed class MigrationHistory(NpgsqlConnection connection)
{
    public const string Table = "cutover_migrations";

    /// <summary>"cutover" in ASCII: one key for every runner against this database.</summary>
    private const long AdvisoryLockKey = 0x637574_6F766572;

    public async Task<bool> TryLockAsync(CancellationToken cancellationToken) =>
        (bool)(await Scalar("SELECT pg_try_advisory_lock(@key)", cancellationToken, ("key", AdvisoryLockKey)))!;

    public async Task LockAsync(CancellationToken cancellationToken) =>
        await Scalar("SELECT pg_advisory_lock(@key)", cancellationToken, ("key", AdvisoryLockKey));

    public async Task UnlockAsync(CancellationToken cancellationToken) =>
        await Scalar("SELECT pg_advisory_unlock(@key)", cancellationToken, ("key", AdvisoryLockKey));

    public async Task EnsureTableAsync(CancellationToken cancellationToken) =>
        await Scalar($"""
            CREATE TABLE IF NOT EXISTS {Table} (
                name text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                duration_ms integer NOT NULL,
                applied_by text NOT NULL
            )
            """, cancellationToken);

    public async Task<bool> ExistsAsync(CancellationToken cancellationToken) =>
        await Scalar($"SELECT to_regclass('{Table}') IS NOT NULL", cancellationToken) is true;

    public async Task<IReadOnlyList<AppliedMigration>> ReadAsync(CancellationToken cancellationToken)
    {
        var rows = new List<AppliedMigration>();
        if (!await ExistsAsync(cancellationToken)) return rows;
        await using var command = new NpgsqlCommand($"SELECT name, checksum, applied_at, duration_ms, applied_by FROM {Table} ORDER BY name", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            rows.Add(new AppliedMigration(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2), reader.GetInt32(3), reader.GetString(4)));
        return rows;
    }

    public async Task RecordAsync(MigrationFile file, TimeSpan duration, string appliedBy, CancellationToken cancellationToken) =>
        await Scalar($"INSERT INTO {Table} (name, checksum, duration_ms, applied_by) VALUES (@name, @checksum, @ms, @by)", cancellationToken,
            ("name", file.Name), ("checksum", file.Checksum), ("ms", (int)Math.Min(int.MaxValue, duration.TotalMilliseconds)), ("by", appliedBy));

    private async Task<object?> Scalar(string sql, CancellationToken cancellationToken, params (string Name, object Value)[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        foreach (var (name, value) in parameters) command.Parameters.AddWithValue(name, value);
        return await command.ExecuteScalarAsync(cancellationToken);
    }
}
