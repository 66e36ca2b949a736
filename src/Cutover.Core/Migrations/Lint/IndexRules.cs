using Cutover.Migrations.Sql;
using static Cutover.Migrations.Lint.LintContext;

namespace Cutover.Migrations.Lint;

/// <summary>CREATE INDEX without CONCURRENTLY holds SHARE on the table (no writes) for the whole build.</summary>
internal sealed class RequireConcurrentIndexCreation : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not CreateIndexStatement { Concurrently: false } index || c.State.IsNewTable(index.Table)) return;
        var t = index.Table.Display;
        var name = index.Name?.Display ?? "<name>";
        c.Report(RuleIds.RequireConcurrentIndexCreation, index.Keyword,
            $"Creating index {name} on {t} without CONCURRENTLY blocks all writes to {t} until the index is built.",
            Steps(
                $"CREATE {(index.Unique ? "UNIQUE " : "")}INDEX CONCURRENTLY IF NOT EXISTS {name} ON {t} ...; in its own migration file, outside BEGIN/COMMIT (it cannot run in a transaction)",
                $"if it fails it leaves an INVALID index: DROP INDEX CONCURRENTLY IF EXISTS {name}; and run it again"));
    }
}

/// <summary>DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on the index's table.</summary>
internal sealed class RequireConcurrentIndexDeletion : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not DropStatement { Kind: DropKind.Index, Concurrently: false } drop) return;
        var existing = c.State.ExistingIndexes(drop.Names);
        if (existing.Count == 0) return;
        var names = string.Join(", ", existing.Select(n => n.Display));
        c.Report(RuleIds.RequireConcurrentIndexDeletion, drop.Keyword,
            $"Dropping index {names} without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on its table, blocking reads and writes while it waits and runs.",
            Steps(
                $"DROP INDEX CONCURRENTLY IF EXISTS {names}; in its own migration file, outside BEGIN/COMMIT (one index per statement)"));
    }
}

/// <summary>CREATE INDEX CONCURRENTLY inside BEGIN ... COMMIT: PostgreSQL refuses it, so the migration fails.</summary>
internal sealed class BanConcurrentIndexCreationInTransaction : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not CreateIndexStatement { Concurrently: true } index || !c.State.InTransaction) return;
        var at = index.Keyword;
        for (var i = 0; i < c.Statement.Tokens.Count; i++)
            if (c.Statement.IsKeyword(i, "CONCURRENTLY"))
            {
                at = c.Statement.Tokens[i];
                break;
            }
        c.Report(RuleIds.BanConcurrentIndexCreationInTransaction, at,
            $"CREATE INDEX CONCURRENTLY on {index.Table.Display} is inside the transaction opened at line {c.State.OpenBegin?.Line}; PostgreSQL refuses to build an index concurrently in a transaction block.",
            Steps(
                "move the CREATE INDEX CONCURRENTLY into its own migration file without BEGIN/COMMIT",
                "Cutover's runner runs a file containing it outside a transaction"));
    }
}
