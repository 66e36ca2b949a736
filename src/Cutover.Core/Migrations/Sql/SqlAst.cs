using System.Collections.Immutable;

namespace Cutover.Migrations.Sql;

// The DDL the lint rules reason about. Only what a rule reads is modelled; everything else stays in the
// statement's tokens. Each node keeps the token a finding should point at.

/// <summary>A possibly schema-qualified name. <see cref="Key"/> folds unquoted parts to lower case, as PostgreSQL does.</summary>
public sealed record QualifiedName(string Display, string Key, SqlToken Token);

public abstract record ParsedStatement(SqlStatement Statement);

/// <summary>A statement the parser does not model (DO blocks, functions, DML, ...); rules see only its tokens.</summary>
public sealed record OpaqueStatement(SqlStatement Statement) : ParsedStatement(Statement);

// Immutable arrays rather than IReadOnlyList: every rule walks these, and their foreach does not allocate.
public sealed record AlterTableStatement(SqlStatement Statement, QualifiedName Table, ImmutableArray<AlterTableAction> Actions)
    : ParsedStatement(Statement);

public sealed record CreateTableStatement(SqlStatement Statement, QualifiedName Table, bool IfNotExists, IReadOnlyList<ColumnDefinition> Columns)
    : ParsedStatement(Statement);

public sealed record CreateIndexStatement(
    SqlStatement Statement, bool Unique, bool Concurrently, bool IfNotExists, QualifiedName? Name, QualifiedName Table, SqlToken Keyword)
    : ParsedStatement(Statement);

public enum DropKind { Index, Table, Database }

public sealed record DropStatement(SqlStatement Statement, DropKind Kind, bool Concurrently, bool IfExists, IReadOnlyList<QualifiedName> Names, SqlToken Keyword)
    : ParsedStatement(Statement);

public sealed record TruncateStatement(SqlStatement Statement, IReadOnlyList<QualifiedName> Tables) : ParsedStatement(Statement);

/// <summary>SET / SET LOCAL / SET SESSION / RESET of a setting; <see cref="Value"/> is null for RESET.</summary>
public sealed record SetStatement(SqlStatement Statement, string Name, string? Value, bool Local) : ParsedStatement(Statement);

public enum TransactionKind { Begin, Commit, Rollback }

public sealed record TransactionStatement(SqlStatement Statement, TransactionKind Kind) : ParsedStatement(Statement);

/// <summary>A column as written in CREATE TABLE or ADD COLUMN.</summary>
public sealed record ColumnDefinition(QualifiedName Name, string Type, SqlToken TypeToken, ImmutableArray<ColumnConstraint> Constraints)
{
    public ColumnConstraint? Find(ColumnConstraintKind kind)
    {
        foreach (var c in Constraints)
            if (c.Kind == kind) return c;
        return null;
    }
}

public enum ColumnConstraintKind { NotNull, Null, Default, Unique, PrimaryKey, Check, References, GeneratedStored, GeneratedVirtual, Identity }

/// <summary>
/// One column constraint. <see cref="Expression"/> holds the tokens of a DEFAULT or generation expression,
/// so the volatility check can look at them.
/// </summary>
public sealed record ColumnConstraint(ColumnConstraintKind Kind, SqlToken Token, IReadOnlyList<SqlToken> Expression);

public enum TableConstraintKind { Check, ForeignKey, Unique, PrimaryKey, Exclude }

/// <summary>
/// A table constraint. <see cref="NotNullColumn"/> is set for <c>CHECK (col IS NOT NULL)</c>, the shape that
/// lets PostgreSQL 12+ skip the scan of a later SET NOT NULL. <see cref="Columns"/> is the column list as written
/// (with its parentheses), for advice that names them.
/// </summary>
public sealed record TableConstraint(
    TableConstraintKind Kind, string? Name, SqlToken Token, bool NotValid, bool UsingIndex, string? NotNullColumn, QualifiedName? ReferencedTable,
    string? Columns);

public abstract record AlterTableAction(SqlToken Token);

public sealed record AddColumnAction(SqlToken Token, ColumnDefinition Column, bool IfNotExists) : AlterTableAction(Token);

public sealed record DropColumnAction(SqlToken Token, QualifiedName Column, bool IfExists) : AlterTableAction(Token);

public sealed record AlterColumnTypeAction(SqlToken Token, QualifiedName Column, string Type) : AlterTableAction(Token);

public sealed record SetNotNullAction(SqlToken Token, QualifiedName Column) : AlterTableAction(Token);

public sealed record DropNotNullAction(SqlToken Token, QualifiedName Column) : AlterTableAction(Token);

public sealed record SetDefaultAction(SqlToken Token, QualifiedName Column, IReadOnlyList<SqlToken> Expression) : AlterTableAction(Token);

public sealed record AddConstraintAction(SqlToken Token, TableConstraint Constraint) : AlterTableAction(Token);

public sealed record ValidateConstraintAction(SqlToken Token, string Name) : AlterTableAction(Token);

public sealed record DropConstraintAction(SqlToken Token, string Name, bool IfExists) : AlterTableAction(Token);

public sealed record RenameColumnAction(SqlToken Token, QualifiedName Column, QualifiedName NewName) : AlterTableAction(Token);

public sealed record RenameTableAction(SqlToken Token, QualifiedName NewName) : AlterTableAction(Token);

/// <summary>
/// Any other action (SET (...), OWNER TO, ENABLE TRIGGER, DETACH PARTITION, ...); <see cref="Lock"/> is the
/// lock PostgreSQL documents for it.
/// </summary>
public sealed record OtherAction(SqlToken Token, string Lock) : AlterTableAction(Token);
