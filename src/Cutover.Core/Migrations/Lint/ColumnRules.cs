using Cutover.Migrations.Sql;
using static Cutover.Migrations.Lint.LintContext;

namespace Cutover.Migrations.Lint;

// Rules about columns added to or changed on a table that already has rows and a running application.
// Tables created earlier in the same file are exempt: they are empty and no deployed code uses them yet.

/// <summary>ADD COLUMN ... NOT NULL without a DEFAULT: fails on a non-empty table, and old code inserting without it breaks.</summary>
internal sealed class AddingRequiredField : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        foreach (var action in alter.Actions)
        {
            if (action is not AddColumnAction add) continue;
            var column = add.Column;
            if (column.Find(ColumnConstraintKind.NotNull) is not { } notNull) continue;
            if (column.Find(ColumnConstraintKind.Default) is not null || column.Find(ColumnConstraintKind.Identity) is not null
                || column.Find(ColumnConstraintKind.GeneratedStored) is not null || column.Find(ColumnConstraintKind.GeneratedVirtual) is not null
                || ColumnTypes.IsSerial(column.Type)) continue;
            var t = alter.Table.Display;
            var col = column.Name.Display;
            c.Report(RuleIds.AddingRequiredField, notNull.Token,
                $"Adding column {col} to {t} as NOT NULL without a DEFAULT fails if {t} has rows, and the running version's INSERTs, which do not set {col}, would fail.",
                Steps(
                    $"ALTER TABLE {t} ADD COLUMN {col} {column.Type}; (nullable, no NOT NULL)",
                    $"deploy code that sets {col} on every INSERT and UPDATE",
                    $"backfill in batches: UPDATE {t} SET {col} = ... WHERE {col} IS NULL (about 10,000 rows per batch)",
                    $"ALTER TABLE {t} ADD CONSTRAINT {Names.Of(alter.Table, column.Name.Key, "not_null")} CHECK ({col} IS NOT NULL) NOT VALID; then VALIDATE CONSTRAINT in a later migration",
                    $"ALTER TABLE {t} ALTER COLUMN {col} SET NOT NULL; (PostgreSQL 12+ uses the validated CHECK instead of a scan), then drop the CHECK",
                    "or: give the column a constant DEFAULT, which is instant from PostgreSQL 11"));
        }
    }
}

/// <summary>ADD COLUMN with a default evaluated per row (or any default before PostgreSQL 11), or GENERATED ... STORED: a table rewrite.</summary>
internal sealed class AddingFieldWithDefault : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        foreach (var action in alter.Actions)
        {
            if (action is not AddColumnAction add) continue;
            var column = add.Column;
            var t = alter.Table.Display;
            var col = column.Name.Display;
            if (column.Find(ColumnConstraintKind.GeneratedStored) is { } generated)
            {
                c.Report(RuleIds.AddingFieldWithDefault, generated.Token,
                    $"Adding stored generated column {col} to {t} rewrites the whole table under an ACCESS EXCLUSIVE lock, blocking reads and writes for its duration.",
                    Steps(
                        $"ALTER TABLE {t} ADD COLUMN {col} {column.Type}; (a plain nullable column)",
                        $"keep it filled for new rows with a BEFORE INSERT OR UPDATE trigger computing {c.Text(generated.Expression)}",
                        $"backfill existing rows in batches: UPDATE {t} SET {col} = ... WHERE {col} IS NULL",
                        "or create a new table with the generated column and migrate to it"));
                continue;
            }
            if (ColumnTypes.IsSerial(column.Type))
            {
                // serial is shorthand for DEFAULT nextval(...): every existing row gets its own value.
                c.Report(RuleIds.AddingFieldWithDefault, column.TypeToken,
                    $"Adding {column.Type} column {col} to {t} fills every existing row from nextval(), a volatile default: the whole table is rewritten under an ACCESS EXCLUSIVE lock.",
                    Steps(
                        $"ALTER TABLE {t} ADD COLUMN {col} bigint; (no default)",
                        $"CREATE SEQUENCE IF NOT EXISTS {Names.Of(alter.Table, column.Name.Key, "seq")} OWNED BY {t}.{col}; then ALTER TABLE {t} ALTER COLUMN {col} SET DEFAULT nextval('{Names.Of(alter.Table, column.Name.Key, "seq")}'); (new rows only)",
                        $"backfill existing rows in batches: UPDATE {t} SET {col} = nextval('{Names.Of(alter.Table, column.Name.Key, "seq")}') WHERE {col} IS NULL"));
                continue;
            }
            if (column.Find(ColumnConstraintKind.Default) is not { } defaultClause) continue;
            var expression = c.Text(defaultClause.Expression);
            string reason;
            // DEFAULT NULL is what a column without a default has: nothing to write, on any version.
            if (expression.Equals("NULL", StringComparison.OrdinalIgnoreCase)) continue;
            if (c.Options.PgVersion < 11)
                reason = $"Before PostgreSQL 11, adding column {col} to {t} with DEFAULT {expression} rewrites the whole table under an ACCESS EXCLUSIVE lock (pg_version is {c.Options.PgVersion}).";
            else if (DefaultVolatility.VolatileCall(c.Statement, defaultClause.Expression) is { } call)
                reason = $"Adding column {col} to {t} with the volatile default {call} rewrites the whole table under an ACCESS EXCLUSIVE lock, blocking reads and writes for its duration.";
            else continue;
            c.Report(RuleIds.AddingFieldWithDefault, defaultClause.Token, reason,
                Steps(
                    $"ALTER TABLE {t} ADD COLUMN {col} {column.Type}; (no default, nullable)",
                    $"ALTER TABLE {t} ALTER COLUMN {col} SET DEFAULT {expression}; (applies to new rows only, no rewrite)",
                    $"backfill existing rows in batches outside the migration's transaction: UPDATE {t} SET {col} = {expression} WHERE {col} IS NULL (about 10,000 rows per batch)",
                    $"if it must be NOT NULL: CHECK ({col} IS NOT NULL) NOT VALID, VALIDATE later, then SET NOT NULL"));
        }
    }
}

/// <summary>SET NOT NULL scans the table under ACCESS EXCLUSIVE, unless (PG 12+) a validated CHECK (col IS NOT NULL) proves it.</summary>
internal sealed class AddingNotNullableField : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        foreach (var action in alter.Actions)
        {
            if (action is not SetNotNullAction set) continue;
            if (c.Options.PgVersion >= 12 && c.State.HasValidatedNotNullCheck(alter.Table, set.Column)) continue;
            var t = alter.Table.Display;
            var col = set.Column.Display;
            var check = Names.Of(alter.Table, set.Column.Key, "not_null");
            c.Report(RuleIds.AddingNotNullableField, set.Token,
                $"Setting NOT NULL on {t}.{col} scans the whole table under an ACCESS EXCLUSIVE lock, blocking reads and writes while it runs.",
                c.Options.PgVersion >= 12
                    ? Steps(
                        $"ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID; (a brief lock, no scan)",
                        $"in a separate migration: ALTER TABLE {t} VALIDATE CONSTRAINT {check}; (scans under SHARE UPDATE EXCLUSIVE: reads and writes continue)",
                        $"ALTER TABLE {t} ALTER COLUMN {col} SET NOT NULL; (PostgreSQL 12+ sees the valid CHECK and skips the scan)",
                        $"ALTER TABLE {t} DROP CONSTRAINT {check};")
                    : Steps(
                        $"ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID;",
                        $"in a separate migration: ALTER TABLE {t} VALIDATE CONSTRAINT {check};",
                        $"keep the CHECK instead of SET NOT NULL: before PostgreSQL 12, SET NOT NULL always scans"));
        }
    }
}

/// <summary>Any ALTER COLUMN ... TYPE: purely syntactic, like squawk, because the old type is not in the file.</summary>
internal sealed class ChangingColumnType : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        foreach (var action in alter.Actions)
        {
            if (action is not AlterColumnTypeAction change) continue;
            var t = alter.Table.Display;
            var col = change.Column.Display;
            var shadow = change.Column.Key + "_new";
            c.Report(RuleIds.ChangingColumnType, change.Token,
                $"Changing the type of {t}.{col} to {change.Type} can rewrite {t} and its indexes under an ACCESS EXCLUSIVE lock, and the running version may not handle the new type.",
                Steps(
                    $"ALTER TABLE {t} ADD COLUMN {shadow} {change.Type};",
                    $"deploy code that writes both {col} and {shadow} (or a trigger that copies {col} into {shadow})",
                    $"backfill in batches: UPDATE {t} SET {shadow} = {col}::{change.Type} WHERE {shadow} IS NULL",
                    $"deploy code that reads {shadow}",
                    $"in a later deploy stop writing {col} and drop it",
                    "rewrite-free changes (varchar(n) to a larger n or to text, numeric to a higher precision at the same scale) are safe: mark them -- cutover:ignore changing-column-type"));
        }
    }
}

/// <summary>DROP COLUMN: the running version still selects or inserts it.</summary>
internal sealed class BanDropColumn : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        foreach (var action in alter.Actions)
        {
            if (action is not DropColumnAction drop) continue;
            var t = alter.Table.Display;
            var col = drop.Column.Display;
            c.Report(RuleIds.BanDropColumn, drop.Token,
                $"Dropping column {col} from {t} breaks the running version of the application, which still reads or writes it.",
                Steps(
                    $"deploy code that no longer reads or writes {t}.{col} (with an ORM, mark the column ignored so it leaves SELECT and INSERT lists)",
                    $"in a later deploy, once no running version uses it: ALTER TABLE {t} DROP COLUMN IF EXISTS {col}; preceded by -- cutover:safety-assured <why no code uses it>"));
        }
    }
}

/// <summary>RENAME COLUMN: old code uses the old name, new code the new one; no moment serves both.</summary>
internal sealed class RenamingColumn : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        foreach (var action in alter.Actions)
        {
            if (action is not RenameColumnAction rename) continue;
            var t = alter.Table.Display;
            var from = rename.Column.Display;
            var to = rename.NewName.Display;
            c.Report(RuleIds.RenamingColumn, rename.Token,
                $"Renaming {t}.{from} to {to} breaks the running version of the application, which still uses {from}.",
                Steps(
                    $"ALTER TABLE {t} ADD COLUMN {to} <type of {from}>;",
                    $"deploy code that writes both {from} and {to}, and backfill: UPDATE {t} SET {to} = {from} WHERE {to} IS NULL (in batches)",
                    $"deploy code that reads {to} only",
                    $"in a later deploy, stop writing {from}, then ALTER TABLE {t} DROP COLUMN {from}; with -- cutover:safety-assured <reason>"));
        }
    }
}

/// <summary>RENAME TO: the running version still queries the old name.</summary>
internal sealed class RenamingTable : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        foreach (var action in alter.Actions)
        {
            if (action is not RenameTableAction rename) continue;
            var from = alter.Table.Display;
            var to = rename.NewName.Display;
            c.Report(RuleIds.RenamingTable, rename.Token,
                $"Renaming table {from} to {to} breaks the running version of the application, which still queries {from}.",
                Steps(
                    $"in one transaction: ALTER TABLE {from} RENAME TO {to}; CREATE VIEW {from} AS SELECT * FROM {to}; (a simple view is updatable, so the old code keeps working)",
                    $"deploy code that uses {to}",
                    $"in a later deploy: DROP VIEW {from};"));
        }
    }
}

internal static class ColumnTypes
{
    private static readonly string[] Serials = ["serial", "serial4", "serial8", "bigserial", "smallserial", "serial2"];

    public static bool IsSerial(string type)
    {
        var t = type.AsSpan().Trim();
        foreach (var serial in Serials)
            if (t.Equals(serial, StringComparison.OrdinalIgnoreCase)) return true;
        return false;
    }
}

/// <summary>PostgreSQL's own constraint naming (table_column_suffix), so advice reads like what \d shows.</summary>
internal static class Names
{
    public static string Of(QualifiedName table, string column, string suffix)
    {
        var last = table.Key[(table.Key.LastIndexOf('.') + 1)..];
        return $"{last}_{column}_{suffix}";
    }
}
