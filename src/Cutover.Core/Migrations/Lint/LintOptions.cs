namespace Cutover.Migrations.Lint;

public enum Severity { Warning, Error }

public enum LintFormat { Human, Json, GitHub, Gcc }

/// <summary>What the linter assumes about the target database and the runner (from migrations.* in cutover.yml).</summary>
public sealed record LintOptions
{
    /// <summary>Major PostgreSQL version; decides e.g. whether a constant DEFAULT rewrites the table (before 11).</summary>
    public int PgVersion { get; init; } = 15;

    /// <summary>Rule ids that never report (migrations.lint.exclude).</summary>
    public IReadOnlySet<string> ExcludedRules { get; init; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>The runner sets lock_timeout itself (migrations.lock_timeout), so files need not.</summary>
    public bool LockTimeoutSetByRunner { get; init; }
}
