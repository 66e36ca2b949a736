using Cutover.Config;
using Cutover.Migrations.Lint;
using Cutover.Releases;

namespace Cutover.Migrations;

/// <summary>What linting a deploy's migrations found: the findings, and the statements let through by safety-assured.</summary>
public sealed record MigrationLintOutcome(IReadOnlyList<FileLintResult> Results)
{
    public IEnumerable<LintFinding> Findings => Results.SelectMany(r => r.Findings);
    public int Errors => Findings.Count(f => f.Severity == Severity.Error);
    public int Warnings => Findings.Count(f => f.Severity == Severity.Warning);

    public IReadOnlyList<SafetyAssuredNote> SafetyAssured =>
        Results.SelectMany(r => r.Assured).Select(a => new SafetyAssuredNote(Path.GetFileName(a.File), a.Line, a.Reason, a.Statement)).ToList();
}

/// <summary>
/// The migrations of a config, as a deploy (or `cutover migrate`) uses them: lint before anything is staged,
/// apply after the build hooks and before the switch, against the database named by database_url_env.
/// </summary>
public sealed class MigrationPhase(MigrationsConfig config, Func<string, string?> environment)
{
    public MigrationsConfig Config => config;

    public static LintOptions LintOptionsFor(MigrationsConfig config) => new()
    {
        PgVersion = config.PgVersion,
        ExcludedRules = config.LintExclude.Where(RuleIds.All.Contains).ToHashSet(StringComparer.Ordinal),
        LockTimeoutSetByRunner = config.LockTimeout > TimeSpan.Zero,
    };

    /// <summary>File globs among migrations.lint.exclude (entries that are not rule ids).</summary>
    public static IReadOnlyList<string> ExcludedPaths(MigrationsConfig config) => config.LintExclude.Where(e => !RuleIds.All.Contains(e)).ToList();

    public MigrationLintOutcome Lint() =>
        new(new MigrationLinter(LintOptionsFor(config)).LintPaths([config.Dir], ExcludedPaths(config)));

    public IReadOnlyList<MigrationFile> Files() => MigrationDirectory.Read(config.Dir);

    public string ConnectionString()
    {
        var url = environment(config.DatabaseUrlEnv);
        if (string.IsNullOrWhiteSpace(url))
            throw new DeployException($"{config.DatabaseUrlEnv} is not set; migrations.database_url_env names the environment variable that holds the database URL");
        return DatabaseUrl.ToConnectionString(url);
    }

    public Task<MigrationRunResult> RunAsync(string appliedBy, Action<string> report, CancellationToken cancellationToken) =>
        new MigrationRunner(ConnectionString(), MigrationRunOptions.From(config) with { AppliedBy = appliedBy }, report)
            .RunAsync(Files(), cancellationToken);
}
