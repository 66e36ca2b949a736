using Cutover.Migrations.Lint;

namespace Cutover.Tests.Migrations;

/// <summary>The classic column rename: three deploys pass, the one-step version is flagged statement by statement.</summary>
public class RenameScenarioTests
{
    private static string Fixtures(string name) => Path.Combine(AppContext.BaseDirectory, "Migrations", "Fixtures", name);

    [Fact]
    public void Three_deploy_rename_has_no_errors()
    {
        var results = new MigrationLinter(new LintOptions()).LintPaths([Fixtures("rename-safe")]);
        Assert.Equal(["001_add_full_name.sql", "002_backfill_full_name.sql", "003_drop_name.sql"], results.Select(r => Path.GetFileName(r.File)));
        Assert.DoesNotContain(results.SelectMany(r => r.Findings), f => f.Severity == Severity.Error);
        var assured = Assert.Single(results.SelectMany(r => r.Assured));
        Assert.Equal(("old code stopped reading name in deploy 2", 3), (assured.Reason, assured.Line));
    }

    [Fact]
    public void One_step_rename_is_flagged_at_each_statement()
    {
        var result = Assert.Single(new MigrationLinter(new LintOptions()).LintPaths([Fixtures("rename-unsafe")]));
        var errors = result.Findings.Where(f => f.Severity == Severity.Error).Select(f => (f.Rule, f.Line, f.Column)).ToList();
        Assert.Equal(
            [
                (RuleIds.RenamingColumn, 1, 19),
                (RuleIds.AddingRequiredField, 2, 36),
                (RuleIds.ChangingColumnType, 3, 19),
                (RuleIds.RequireConcurrentIndexCreation, 4, 8),
            ],
            errors);
        Assert.Contains(result.Findings, f => (f.Rule, f.Line) == (RuleIds.RequireLockTimeout, 1));
    }

    [Fact]
    public void Lint_paths_in_parallel_gives_what_linting_one_by_one_gives()
    {
        var dir = Directory.CreateTempSubdirectory("cutover-lint-").FullName;
        try
        {
            var statements = new[]
            {
                "ALTER TABLE t ADD COLUMN c int NOT NULL;", "CREATE INDEX i ON t (a);", "SET lock_timeout = '1s';", "BEGIN;", "COMMIT;",
                "ALTER TABLE t RENAME COLUMN a TO b;", "DO $$ BEGIN DROP TABLE t; END $$;", "ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);",
            };
            var random = new Random(3);
            for (var f = 0; f < 200; f++)
                File.WriteAllLines(Path.Combine(dir, $"{f:D3}.sql"), Enumerable.Range(0, 12).Select(_ => statements[random.Next(statements.Length)]));
            var linter = new MigrationLinter(new LintOptions());
            var parallel = linter.LintPaths([dir]);
            var sequential = parallel.Select(r => linter.Lint(r.File, File.ReadAllText(r.File))).ToList();
            Assert.Equal(sequential.SelectMany(r => r.Findings), parallel.SelectMany(r => r.Findings));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Lint_paths_sorts_excludes_and_accepts_files()
    {
        var dir = Directory.CreateTempSubdirectory("cutover-lint-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "002_b.sql"), "DROP TABLE b;");
            File.WriteAllText(Path.Combine(dir, "001_a.sql"), "SELECT 1;");
            File.WriteAllText(Path.Combine(dir, "notes.txt"), "DROP TABLE x;");
            Directory.CreateDirectory(Path.Combine(dir, "old"));
            File.WriteAllText(Path.Combine(dir, "old", "000_old.sql"), "DROP TABLE c;");
            var linter = new MigrationLinter(new LintOptions());
            Assert.Equal(["001_a.sql", "002_b.sql", "000_old.sql"], linter.LintPaths([dir]).Select(r => Path.GetFileName(r.File)));
            Assert.Equal(["001_a.sql", "002_b.sql"], linter.LintPaths([dir], ["old/**"]).Select(r => Path.GetFileName(r.File)));
            Assert.Equal(["notes.txt"], linter.LintPaths([Path.Combine(dir, "notes.txt")]).Select(r => Path.GetFileName(r.File)));
            Assert.Throws<FileNotFoundException>(() => linter.LintPaths([Path.Combine(dir, "missing")]));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
