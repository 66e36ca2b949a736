using Cutover.Config;
using Cutover.Migrations;

namespace Cutover.Tests.Config;

public class MigrationsConfigTests
{
    private const string File = "/srv/app/cutover.yml";
    private const string Head = "app: shop\nroot: /srv/shop\n";

    [Fact]
    public void The_documented_section_reads_as_written()
    {
        var config = ConfigLoader.Parse(Head + """
            migrations:
              dir: db/migrations
              database_url_env: DATABASE_URL
              lock_timeout: 5s
              statement_timeout: 0s
              lint: warn
            """, File).Migrations!;
        Assert.Equal("/srv/app/db/migrations", config.Dir);
        Assert.Equal("DATABASE_URL", config.DatabaseUrlEnv);
        Assert.Equal(TimeSpan.FromSeconds(5), config.LockTimeout);
        Assert.Equal(TimeSpan.Zero, config.StatementTimeout);
        Assert.Equal(MigrationLintLevel.Warn, config.Lint);
        Assert.Equal(15, config.PgVersion);
    }

    [Fact]
    public void Lint_exclude_takes_rule_ids_and_file_globs_and_pg_version_takes_a_major_version()
    {
        var config = ConfigLoader.Parse(Head + """
            migrations:
              dir: db
              pg_version: "10.4"
              lint:
                level: error
                exclude: [prefer-robust-stmts, "legacy/*.sql"]
            """, File).Migrations!;
        Assert.Equal(10, config.PgVersion);
        var options = MigrationPhase.LintOptionsFor(config);
        Assert.Equal(["prefer-robust-stmts"], options.ExcludedRules);
        Assert.True(options.LockTimeoutSetByRunner);
        Assert.Equal(["legacy/*.sql"], MigrationPhase.ExcludedPaths(config));
    }

    [Theory]
    [InlineData("  lint: strict\n", "migrations.lint", "'strict' is not one of error | warn | off")]
    [InlineData("  pg_version: latest\n", "migrations.pg_version", "is not a PostgreSQL major version")]
    [InlineData("  lock_timeout: 5\n", "migrations.lock_timeout", "has no unit")]
    [InlineData("  database_url_env: DATABASE-URL\n", "migrations.database_url_env", "is not an environment variable name")]
    [InlineData("  lock_timout: 5s\n", "migrations.lock_timout", "did you mean 'lock_timeout'?")]
    public void Mistakes_name_the_file_line_and_key(string line, string key, string message)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Head + "migrations:\n  dir: db\n" + line, File));
        var error = Assert.Single(e.Errors);
        Assert.Equal(key, error.Key);
        Assert.Contains(message, error.Message);
        Assert.Equal(5, error.Line);
    }
}
