namespace Cutover.Config;

public enum MigrationLintLevel { Error, Warn, Off }

/// <summary>The `migrations` section: where the files are, how to reach the database, how strictly to lint.</summary>
public sealed record MigrationsConfig
{
    /// <summary>Absolute; files named NNNN_name.sql, applied in name order.</summary>
    public required string Dir { get; init; }
    public string DatabaseUrlEnv { get; init; } = "DATABASE_URL";
    public TimeSpan LockTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Zero means no limit, as in PostgreSQL.</summary>
    public TimeSpan StatementTimeout { get; init; } = TimeSpan.Zero;
    /// <summary>Tries per migration when it cannot get its lock within lock_timeout.</summary>
    public int LockRetries { get; init; } = 5;
    public MigrationLintLevel Lint { get; init; } = MigrationLintLevel.Error;
    /// <summary>Rule ids to skip and file globs (relative to dir) not to lint.</summary>
    public IReadOnlyList<string> LintExclude { get; init; } = [];
    public int PgVersion { get; init; } = 15;
    /// <summary>Hold new requests in Cutover's proxy while the migrations run (kamal-proxy's pause): a short exclusive lock goes unseen.</summary>
    public bool Pause { get; init; }
    /// <summary>The pause's backstop: held requests get 503 and the pause ends if the deploy has not resumed by then.</summary>
    public TimeSpan PauseTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
