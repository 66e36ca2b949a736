using Cutover.Migrations.Sql;
using static Cutover.Migrations.Lint.LintContext;

namespace Cutover.Migrations.Lint;

// Rules that depend on the file so far rather than on one statement.

/// <summary>
/// The first statement that takes ACCESS EXCLUSIVE on a pre-existing table without lock_timeout: while it waits
/// behind a long query, every later query on that table queues behind it, which is an outage.
/// </summary>
internal sealed class RequireLockTimeout : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Options.LockTimeoutSetByRunner || c.State.LockTimeoutSet || c.State.LockTimeoutReported) return;
        if (c.Lock != PgLock.AccessExclusive) return;
        var target = c.Parsed switch
        {
            AlterTableStatement alter => c.State.IsNewTable(alter.Table) ? null : alter.Table.Display,
            DropStatement { Kind: DropKind.Table } drop => c.State.ExistingTables(drop.Names).FirstOrDefault()?.Display,
            DropStatement { Kind: DropKind.Index } drop => c.State.ExistingIndexes(drop.Names).Count > 0 ? "the index's table" : null,
            TruncateStatement truncate => c.State.ExistingTables(truncate.Tables).FirstOrDefault()?.Display,
            CreateTableStatement => null,
            _ => "the table",
        };
        if (target is null) return;
        c.State.LockTimeoutReported = true;
        c.Report(RuleIds.RequireLockTimeout, c.Statement.Tokens[0],
            $"This statement takes an ACCESS EXCLUSIVE lock on {target} with no lock_timeout set: while it waits for a long-running query, every other query on {target} queues behind it.",
            Steps(
                "SET lock_timeout = '2s'; at the top of the file (SET LOCAL lock_timeout inside BEGIN ... COMMIT)",
                "retry the migration when it times out; or set migrations.lock_timeout in cutover.yml so the runner sets it"));
    }
}

/// <summary>
/// Outside a transaction a file that fails half way leaves its first statements applied; IF [NOT] EXISTS lets
/// it be re-run. A file with one changing statement is atomic anyway.
/// </summary>
internal sealed class PreferRobustStmts : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.State.InTransaction || c.State.ChangingStatements < 2) return;
        switch (c.Parsed)
        {
            case CreateTableStatement { IfNotExists: false } create:
                Report(c, c.Statement.Tokens[0], $"CREATE TABLE {create.Table.Display}", "CREATE TABLE IF NOT EXISTS");
                break;
            case CreateIndexStatement { Concurrently: true, Name: null } index:
                Report(c, index.Keyword, $"CREATE INDEX CONCURRENTLY on {index.Table.Display} without a name",
                    "a named CREATE INDEX CONCURRENTLY IF NOT EXISTS (without a name a retry builds a second index)");
                break;
            case CreateIndexStatement { IfNotExists: false } index:
                Report(c, index.Keyword, $"CREATE INDEX {index.Name?.Display}", "CREATE INDEX ... IF NOT EXISTS");
                break;
            case DropStatement { IfExists: false, Kind: not DropKind.Database } drop:
                Report(c, drop.Keyword, $"DROP {drop.Kind.ToString().ToUpperInvariant()} {drop.Names[0].Display}", $"DROP {drop.Kind.ToString().ToUpperInvariant()} IF EXISTS");
                break;
            case AlterTableStatement alter:
                foreach (var action in alter.Actions)
                {
                    if (action is AddColumnAction { IfNotExists: false } add)
                        Report(c, add.Token, $"ADD COLUMN {add.Column.Name.Display} on {alter.Table.Display}", "ADD COLUMN IF NOT EXISTS");
                    else if (action is DropColumnAction { IfExists: false } drop)
                        Report(c, drop.Token, $"DROP COLUMN {drop.Column.Display} on {alter.Table.Display}", "DROP COLUMN IF EXISTS");
                    else if (action is DropConstraintAction { IfExists: false } dropConstraint)
                        Report(c, dropConstraint.Token, $"DROP CONSTRAINT {dropConstraint.Name} on {alter.Table.Display}", "DROP CONSTRAINT IF EXISTS");
                }
                break;
        }
    }

    private static void Report(LintContext c, SqlToken at, string what, string robust) =>
        c.Report(RuleIds.PreferRobustStmts, at,
            $"{what} is not re-runnable: this file runs outside a transaction, so if a later statement fails, running it again fails here.",
            Steps($"write {robust}", "or wrap the file in BEGIN ... COMMIT if it has no CONCURRENTLY statements"));
}

/// <summary>BEGIN inside BEGIN, COMMIT without BEGIN: the runner's and the file's transactions fight.</summary>
internal sealed class TransactionNesting : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not TransactionStatement tx) return;
        var at = c.Statement.Tokens[0];
        if (tx.Kind == TransactionKind.Begin && c.State.InTransaction)
            c.Report(RuleIds.TransactionNesting, at,
                $"BEGIN inside the transaction opened at line {c.State.OpenBegin?.Line}: PostgreSQL ignores it with a warning, and the first COMMIT ends both.",
                Steps("remove the inner BEGIN (use SAVEPOINT for a nested scope)"));
        else if (tx.Kind != TransactionKind.Begin && !c.State.InTransaction)
            c.Report(RuleIds.TransactionNesting, at,
                $"{c.Statement.TokenText(at).ToUpperInvariant()} without a BEGIN in this file: it ends a transaction the runner or an earlier file opened.",
                Steps("remove it, or add the matching BEGIN in this file"));
    }
}
