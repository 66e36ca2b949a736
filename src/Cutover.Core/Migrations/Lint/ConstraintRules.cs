using Cutover.Migrations.Sql;
using static Cutover.Migrations.Lint.LintContext;

namespace Cutover.Migrations.Lint;

/// <summary>
/// ADD CONSTRAINT CHECK/FOREIGN KEY without NOT VALID validates every row while holding the add's lock; and a
/// VALIDATE in the same transaction as its NOT VALID add keeps that lock during the scan, undoing the point.
/// </summary>
internal sealed class ConstraintMissingNotValid : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        var t = alter.Table.Display;
        foreach (var action in alter.Actions)
        {
            if (action is AddConstraintAction { Constraint: { NotValid: false, UsingIndex: false } k }
                && k.Kind is TableConstraintKind.Check or TableConstraintKind.ForeignKey)
            {
                var name = k.Name ?? "<name>";
                var kind = k.Kind == TableConstraintKind.Check ? "CHECK" : "FOREIGN KEY";
                c.Report(RuleIds.ConstraintMissingNotValid, k.Token,
                    $"Adding {kind} constraint {name} to {t} without NOT VALID checks every existing row while holding a lock that blocks writes{(k.Kind == TableConstraintKind.Check ? " and reads" : "")}.",
                    Steps(
                        $"ALTER TABLE {t} ADD CONSTRAINT {name} {kind} ... NOT VALID; (a brief lock; new and updated rows are checked from now on)",
                        $"in a separate migration: ALTER TABLE {t} VALIDATE CONSTRAINT {name}; (scans under SHARE UPDATE EXCLUSIVE: reads and writes continue)"));
            }
            else if (action is ValidateConstraintAction validate && c.State.AddedNotValidInThisTransaction(alter.Table, validate.Name))
            {
                c.Report(RuleIds.ConstraintMissingNotValid, validate.Token,
                    $"VALIDATE CONSTRAINT {validate.Name} on {t} runs in the same transaction that added it NOT VALID, so the add's lock is held for the whole validation scan.",
                    Steps(
                        $"COMMIT after ADD CONSTRAINT {validate.Name} ... NOT VALID",
                        $"run ALTER TABLE {t} VALIDATE CONSTRAINT {validate.Name}; in a separate migration or transaction"));
            }
        }
    }
}

/// <summary>A validated foreign key blocks writes on both tables while it checks every row.</summary>
internal sealed class AddingForeignKeyConstraint : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        var t = alter.Table.Display;
        foreach (var action in alter.Actions)
        {
            if (action is AddConstraintAction { Constraint: { Kind: TableConstraintKind.ForeignKey, NotValid: false } fk })
            {
                var name = fk.Name ?? "<name>";
                var parent = fk.ReferencedTable?.Display ?? "the referenced table";
                c.Report(RuleIds.AddingForeignKeyConstraint, fk.Token,
                    $"Adding foreign key {name} on {t} referencing {parent} validates every row while holding SHARE ROW EXCLUSIVE locks that block writes to both tables.",
                    Steps(
                        $"ALTER TABLE {t} ADD CONSTRAINT {name} FOREIGN KEY {fk.Columns} REFERENCES {parent} ... NOT VALID;",
                        $"in a separate migration: ALTER TABLE {t} VALIDATE CONSTRAINT {name}; (does not block writes)"));
            }
            else if (action is AddColumnAction add && add.Column.Find(ColumnConstraintKind.References) is { } references)
            {
                var col = add.Column.Name.Display;
                var name = Names.Of(alter.Table, add.Column.Name.Key, "fkey");
                c.Report(RuleIds.AddingForeignKeyConstraint, references.Token,
                    $"Adding column {col} to {t} with REFERENCES creates a validated foreign key, locking {t} and the referenced table against writes.",
                    Steps(
                        $"ALTER TABLE {t} ADD COLUMN {col} {add.Column.Type}; (without REFERENCES)",
                        $"ALTER TABLE {t} ADD CONSTRAINT {name} FOREIGN KEY ({col}) REFERENCES ... NOT VALID;",
                        $"in a separate migration: ALTER TABLE {t} VALIDATE CONSTRAINT {name};"));
            }
        }
    }
}

/// <summary>ADD CONSTRAINT UNIQUE (or ADD COLUMN ... UNIQUE) builds the index under ACCESS EXCLUSIVE.</summary>
internal sealed class DisallowedUniqueConstraint : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        var t = alter.Table.Display;
        foreach (var action in alter.Actions)
        {
            string columns;
            string name;
            SqlToken at;
            if (action is AddConstraintAction { Constraint: { Kind: TableConstraintKind.Unique, UsingIndex: false } unique })
            {
                columns = unique.Columns ?? "(...)";
                name = unique.Name ?? Names.Of(alter.Table, "cols", "key");
                at = unique.Token;
            }
            else if (action is AddColumnAction add && add.Column.Find(ColumnConstraintKind.Unique) is { } inline)
            {
                columns = $"({add.Column.Name.Display})";
                name = Names.Of(alter.Table, add.Column.Name.Key, "key");
                at = inline.Token;
            }
            else continue;
            c.Report(RuleIds.DisallowedUniqueConstraint, at,
                $"Adding UNIQUE {columns} to {t} builds its index while holding an ACCESS EXCLUSIVE lock, blocking reads and writes for the whole build.",
                Steps(
                    $"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {t} {columns}; in its own migration, outside a transaction",
                    $"ALTER TABLE {t} ADD CONSTRAINT {name} UNIQUE USING INDEX {name}; (instant)"));
        }
    }
}

/// <summary>ADD PRIMARY KEY (or a column with PRIMARY KEY) builds the index, and checks NOT NULL, under ACCESS EXCLUSIVE.</summary>
internal sealed class AddingSerialPrimaryKeyField : ILintRule
{
    public void Check(LintContext c)
    {
        if (c.Parsed is not AlterTableStatement alter || c.State.IsNewTable(alter.Table)) return;
        var t = alter.Table.Display;
        var last = alter.Table.Key[(alter.Table.Key.LastIndexOf('.') + 1)..];
        foreach (var action in alter.Actions)
        {
            if (action is AddConstraintAction { Constraint: { Kind: TableConstraintKind.PrimaryKey, UsingIndex: false } pk })
            {
                var columns = pk.Columns ?? "(...)";
                c.Report(RuleIds.AddingSerialPrimaryKeyField, pk.Token,
                    $"Adding PRIMARY KEY {columns} to {t} builds a unique index while holding an ACCESS EXCLUSIVE lock, blocking reads and writes for the whole build.",
                    Steps(
                        $"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {last}_pkey_idx ON {t} {columns}; in its own migration, outside a transaction",
                        "make sure the key columns are NOT NULL (the safe way: CHECK ... IS NOT NULL NOT VALID, VALIDATE, SET NOT NULL)",
                        $"ALTER TABLE {t} ADD CONSTRAINT {pk.Name ?? last + "_pkey"} PRIMARY KEY USING INDEX {last}_pkey_idx;"));
            }
            else if (action is AddColumnAction add && add.Column.Find(ColumnConstraintKind.PrimaryKey) is { } inline)
            {
                var col = add.Column.Name.Display;
                var serial = ColumnTypes.IsSerial(add.Column.Type);
                c.Report(RuleIds.AddingSerialPrimaryKeyField, inline.Token,
                    $"Adding {(serial ? add.Column.Type + " " : "")}PRIMARY KEY column {col} to {t} {(serial ? "rewrites the table to fill it and " : "")}builds a unique index under an ACCESS EXCLUSIVE lock, blocking reads and writes.",
                    Steps(
                        $"ALTER TABLE {t} ADD COLUMN {col} bigint; (nullable, no default)",
                        $"attach a sequence or identity for new rows, then backfill existing rows in batches",
                        $"make it NOT NULL the safe way (CHECK ({col} IS NOT NULL) NOT VALID, VALIDATE, SET NOT NULL)",
                        $"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {last}_pkey_idx ON {t} ({col});",
                        $"ALTER TABLE {t} ADD CONSTRAINT {last}_pkey PRIMARY KEY USING INDEX {last}_pkey_idx;"));
            }
        }
    }
}
