using Cutover.Migrations.Sql;
using static Cutover.Migrations.Lint.LintContext;

namespace Cutover.Migrations.Lint;

/// <summary>DROP TABLE of a table the running version may still use.</summary>
internal sealed class BanDropTable : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not DropStatement { Kind: DropKind.Table } drop) return;
        foreach (var table in drop.Names)
        {
            if (c.State.IsNewTable(table)) continue;
            var t = table.Display;
            c.Report(RuleIds.BanDropTable, table.Token,
                $"Dropping table {t} breaks the running version of the application if it still uses {t}, and the data cannot be rolled back.",
                Steps(
                    $"deploy code that no longer reads or writes {t}",
                    $"in a later deploy: DROP TABLE IF EXISTS {t}; preceded by -- cutover:safety-assured <why no code uses it> (take a backup first)"));
        }
    }
}

internal sealed class BanDropDatabase : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not DropStatement { Kind: DropKind.Database } drop) return;
        var name = drop.Names[0];
        c.Report(RuleIds.BanDropDatabase, name.Token,
            $"Dropping database {name.Display} deletes all of its data; a migration should never do this.",
            Steps(
                "drop databases by hand, after a backup, outside the deploy",
                "if this file is really meant to, mark it -- cutover:safety-assured <reason>"));
    }
}

internal sealed class BanTruncate : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not TruncateStatement truncate) return;
        var existing = c.State.ExistingTables(truncate.Tables);
        if (existing.Count == 0) return;
        var t = string.Join(", ", existing.Select(n => n.Display));
        c.Report(RuleIds.BanTruncate, c.Statement.Tokens[0],
            $"TRUNCATE {t} deletes every row under an ACCESS EXCLUSIVE lock, while the running version of the application still expects the data.",
            Steps(
                $"deploy code that no longer reads {t}",
                "delete in batches (DELETE ... WHERE id IN (SELECT id ... LIMIT 10000)), or drop the table in a later deploy with -- cutover:safety-assured <reason>"));
    }
}
