using System.Collections.Immutable;

namespace Cutover.Migrations.Sql;

/// <summary>
/// Recursive descent over one statement's tokens, for the DDL the lint rules need. Statements it does not model
/// come back as <see cref="OpaqueStatement"/>; a modelled statement it cannot read throws
/// <see cref="SqlSyntaxException"/> at the offending token. It is deliberately lenient in the tails of clauses
/// (storage parameters, tablespaces, partition bounds) that no rule reads.
/// </summary>
public static class SqlParser
{
    public static ParsedStatement Parse(SqlStatement statement)
    {
        var c = new TokenCursor(statement);
        if (statement.IsTransactionControl)
        {
            var kind = c.Is("BEGIN") || c.Is("START") ? TransactionKind.Begin
                : c.Is("COMMIT") || c.Is("END") ? TransactionKind.Commit
                : TransactionKind.Rollback;
            return new TransactionStatement(statement, kind);
        }
        if (c.Is("ALTER") && c.Is("TABLE", 1)) return AlterTable(c);
        if (c.Is("CREATE")) return Create(c);
        if (c.Is("DROP")) return Drop(c);
        if (c.Is("TRUNCATE")) return Truncate(c);
        if (c.Is("SET") || c.Is("RESET")) return Set(c);
        return new OpaqueStatement(statement);
    }

    // ---- ALTER TABLE ----

    private static ParsedStatement AlterTable(TokenCursor c)
    {
        c.Position = 2;
        c.Accept("IF", "EXISTS");
        if (c.Is("ALL")) return new OpaqueStatement(c.Statement); // ALTER TABLE ALL IN TABLESPACE
        c.Accept("ONLY");
        var table = Name(c, "a table name");
        AcceptStar(c);
        var actions = new List<AlterTableAction> { Action(c) };
        while (c.Accept(SqlTokenKind.Comma)) actions.Add(Action(c));
        if (!c.AtEnd) throw c.Error("expected ',' or the end of the statement");
        return new AlterTableStatement(c.Statement, table, [.. actions]);
    }

    private static AlterTableAction Action(TokenCursor c)
    {
        if (c.AtEnd) throw c.Error("expected an ALTER TABLE action");
        var at = c.Current;
        if (c.Accept("ADD"))
        {
            if (IsTableConstraintStart(c)) return new AddConstraintAction(at, TableConstraint(c));
            c.Accept("COLUMN");
            var ifNotExists = AcceptIfNotExists(c);
            return new AddColumnAction(at, Column(c), ifNotExists);
        }
        if (c.Accept("DROP"))
        {
            if (c.Accept("CONSTRAINT"))
            {
                var ifExists = c.Accept("IF", "EXISTS");
                var constraint = Name(c, "a constraint name");
                SkipToActionEnd(c);
                return new DropConstraintAction(at, constraint.Key, ifExists);
            }
            c.Accept("COLUMN");
            var columnIfExists = c.Accept("IF", "EXISTS");
            var column = Name(c, "a column name");
            if (!c.Accept("CASCADE")) c.Accept("RESTRICT");
            return new DropColumnAction(at, column, columnIfExists);
        }
        if (c.Accept("ALTER"))
        {
            c.Accept("COLUMN");
            return AlterColumn(c, at, Name(c, "a column name"));
        }
        if (c.Accept("VALIDATE"))
        {
            c.Expect("CONSTRAINT");
            return new ValidateConstraintAction(at, Name(c, "a constraint name").Key);
        }
        if (c.Accept("RENAME"))
        {
            if (c.Accept("TO")) return new RenameTableAction(at, Name(c, "a new table name"));
            if (c.Accept("CONSTRAINT"))
            {
                SkipToActionEnd(c);
                return new OtherAction(at, PgLock.AccessExclusive);
            }
            c.Accept("COLUMN");
            var from = Name(c, "a column name");
            c.Expect("TO");
            return new RenameColumnAction(at, from, Name(c, "a new column name"));
        }
        var lockMode = OtherActionLock(c);
        SkipToActionEnd(c);
        return new OtherAction(at, lockMode);
    }

    /// <summary>The locks of ALTER TABLE's other forms, from the ALTER TABLE reference page.</summary>
    private static string OtherActionLock(TokenCursor c)
    {
        if ((c.Is("SET") || c.Is("RESET")) && c.IsKind(SqlTokenKind.OpenParen, 1)) return PgLock.ShareUpdateExclusive;
        if ((c.Is("ENABLE") || c.Is("DISABLE")) && c.Is("TRIGGER", 1)) return PgLock.ShareRowExclusive;
        if (c.Is("ATTACH") || (c.Is("CLUSTER") && c.Is("ON", 1))) return PgLock.ShareUpdateExclusive;
        if (c.Is("DETACH"))
        {
            for (var i = 0; !c.IsKind(SqlTokenKind.Comma, i) && c.Position + i < c.Statement.Tokens.Count; i++)
                if (c.Is("CONCURRENTLY", i)) return PgLock.ShareUpdateExclusive;
        }
        return PgLock.AccessExclusive;
    }

    private static AlterTableAction AlterColumn(TokenCursor c, SqlToken at, QualifiedName column)
    {
        if (c.Accept("SET", "DATA") || c.Is("TYPE"))
        {
            c.Expect("TYPE");
            var (type, _) = TypeName(c, "USING");
            SkipToActionEnd(c); // COLLATE, USING expr
            return new AlterColumnTypeAction(at, column, type);
        }
        if (c.Is("SET") && c.Is("NOT", 1) && c.Is("NULL", 2))
        {
            var set = c.Advance();
            c.Position += 2;
            return new SetNotNullAction(set, column);
        }
        if (c.Is("DROP") && c.Is("NOT", 1) && c.Is("NULL", 2))
        {
            var drop = c.Advance();
            c.Position += 2;
            return new DropNotNullAction(drop, column);
        }
        if (c.Is("SET") && c.Is("DEFAULT", 1))
        {
            var set = c.Advance();
            c.Advance();
            var expression = Expression(c, columnConstraints: false);
            if (expression.Count == 0) throw c.Error("expected a default expression");
            return new SetDefaultAction(set, column, expression);
        }
        var lockMode = c.Is("SET") && (c.Is("STATISTICS", 1) || c.IsKind(SqlTokenKind.OpenParen, 1)) || c.Is("RESET")
            ? PgLock.ShareUpdateExclusive
            : PgLock.AccessExclusive;
        if (c.AtEnd || c.IsKind(SqlTokenKind.Comma)) throw c.Error("expected an ALTER COLUMN action");
        SkipToActionEnd(c);
        return new OtherAction(at, lockMode);
    }

    /// <summary>To the ',' that ends this action or the end of the statement, stepping over parentheses.</summary>
    private static void SkipToActionEnd(TokenCursor c)
    {
        while (!c.AtEnd && !c.IsKind(SqlTokenKind.Comma))
        {
            if (c.IsKind(SqlTokenKind.OpenParen) || c.IsKind(SqlTokenKind.OpenBracket)) c.SkipGroup();
            else if (c.IsKind(SqlTokenKind.CloseParen)) throw c.Error("unbalanced ')'");
            else c.Advance();
        }
    }

    // ---- CREATE ----

    private static ParsedStatement Create(TokenCursor c)
    {
        c.Position = 1;
        if (c.Is("UNIQUE") || c.Is("INDEX")) return CreateIndex(c);
        if (c.Is("GLOBAL") || c.Is("LOCAL")) c.Advance();
        if (!(c.Accept("TEMP") || c.Accept("TEMPORARY"))) c.Accept("UNLOGGED");
        return c.Is("TABLE") ? CreateTable(c) : new OpaqueStatement(c.Statement);
    }

    private static CreateTableStatement CreateTable(TokenCursor c)
    {
        c.Expect("TABLE");
        var ifNotExists = AcceptIfNotExists(c);
        var table = Name(c, "a table name");
        var columns = new List<ColumnDefinition>();
        // AS SELECT, PARTITION OF, OF type: nothing a rule reads beyond the table's existence.
        if (c.Accept(SqlTokenKind.OpenParen))
        {
            while (!c.Accept(SqlTokenKind.CloseParen))
            {
                if (IsTableConstraintStart(c)) TableConstraint(c);
                else if (c.Is("LIKE")) SkipToElementEnd(c);
                else columns.Add(Column(c));
                if (!c.IsKind(SqlTokenKind.CloseParen)) c.Expect(SqlTokenKind.Comma, "',' or ')'");
            }
        }
        return new CreateTableStatement(c.Statement, table, ifNotExists, columns);
    }

    private static void SkipToElementEnd(TokenCursor c)
    {
        while (!c.AtEnd && !c.IsKind(SqlTokenKind.Comma) && !c.IsKind(SqlTokenKind.CloseParen))
        {
            if (c.IsKind(SqlTokenKind.OpenParen) || c.IsKind(SqlTokenKind.OpenBracket)) c.SkipGroup();
            else c.Advance();
        }
    }

    private static CreateIndexStatement CreateIndex(TokenCursor c)
    {
        var unique = c.Accept("UNIQUE");
        var keyword = c.Expect("INDEX");
        var concurrently = c.Accept("CONCURRENTLY");
        var ifNotExists = AcceptIfNotExists(c);
        QualifiedName? name = null;
        if (!c.Is("ON")) name = Name(c, "an index name or ON");
        c.Expect("ON");
        c.Accept("ONLY");
        var table = Name(c, "a table name");
        if (c.AtEnd) throw c.Error("expected USING or '('");
        return new CreateIndexStatement(c.Statement, unique, concurrently, ifNotExists, name, table, keyword);
    }

    // ---- DROP / TRUNCATE ----

    private static ParsedStatement Drop(TokenCursor c)
    {
        c.Position = 1;
        DropKind kind;
        if (c.Is("INDEX")) kind = DropKind.Index;
        else if (c.Is("TABLE")) kind = DropKind.Table;
        else if (c.Is("DATABASE")) kind = DropKind.Database;
        else return new OpaqueStatement(c.Statement);
        var keyword = c.Advance();
        var concurrently = kind == DropKind.Index && c.Accept("CONCURRENTLY");
        var ifExists = c.Accept("IF", "EXISTS");
        var names = new List<QualifiedName> { Name(c, $"a {kind.ToString().ToLowerInvariant()} name") };
        while (kind != DropKind.Database && c.Accept(SqlTokenKind.Comma)) names.Add(Name(c, "a name"));
        if (kind == DropKind.Database)
        {
            c.Accept("WITH");
            if (c.IsKind(SqlTokenKind.OpenParen)) c.SkipGroup();
        }
        else if (!c.Accept("CASCADE")) c.Accept("RESTRICT");
        if (!c.AtEnd) throw c.Error("expected the end of the statement");
        return new DropStatement(c.Statement, kind, concurrently, ifExists, names, keyword);
    }

    private static TruncateStatement Truncate(TokenCursor c)
    {
        c.Position = 1;
        c.Accept("TABLE");
        var tables = new List<QualifiedName>();
        do
        {
            c.Accept("ONLY");
            tables.Add(Name(c, "a table name"));
            AcceptStar(c);
        } while (c.Accept(SqlTokenKind.Comma));
        // RESTART IDENTITY, CONTINUE IDENTITY, CASCADE, RESTRICT
        while (!c.AtEnd)
        {
            if (c.IsKind(SqlTokenKind.Word)) c.Advance();
            else throw c.Error("expected the end of the statement");
        }
        return new TruncateStatement(c.Statement, tables);
    }

    // ---- SET / RESET ----

    private static ParsedStatement Set(TokenCursor c)
    {
        var reset = c.Is("RESET");
        c.Position = 1;
        var local = false;
        if (!reset)
        {
            if (c.Accept("LOCAL")) local = true;
            else c.Accept("SESSION");
        }
        if (c.AtEnd) throw c.Error("expected a setting name");
        var name = Name(c, "a setting name").Key;
        if (reset) return new SetStatement(c.Statement, name, null, local);
        if (!c.Accept("TO")) c.Accept(SqlTokenKind.Operator); // '='
        var value = c.AtEnd ? "" : c.Statement.Text[(c.Current.Offset - c.Statement.Offset)..];
        return new SetStatement(c.Statement, name, value, local);
    }

    // ---- columns and constraints ----

    private static readonly string[] ColumnConstraintWords =
        ["CONSTRAINT", "NOT", "NULL", "DEFAULT", "CHECK", "UNIQUE", "PRIMARY", "REFERENCES", "GENERATED", "COLLATE",
         "DEFERRABLE", "INITIALLY", "COMPRESSION", "STORAGE"];

    private static ColumnDefinition Column(TokenCursor c)
    {
        var name = Name(c, "a column name");
        var (type, typeToken) = TypeName(c, null);
        var constraints = new List<ColumnConstraint>();
        while (!c.AtEnd && !c.IsKind(SqlTokenKind.Comma) && !c.IsKind(SqlTokenKind.CloseParen))
        {
            if (c.Accept("CONSTRAINT"))
            {
                Name(c, "a constraint name");
                continue;
            }
            var at = c.Current;
            if (c.Accept("NOT", "NULL")) constraints.Add(new ColumnConstraint(ColumnConstraintKind.NotNull, at, []));
            else if (c.Accept("NOT", "DEFERRABLE") || c.Accept("DEFERRABLE")) { }
            else if (c.Accept("INITIALLY") || c.Accept("COMPRESSION") || c.Accept("STORAGE")) c.Advance();
            else if (c.Accept("NULL")) constraints.Add(new ColumnConstraint(ColumnConstraintKind.Null, at, []));
            else if (c.Accept("DEFAULT"))
            {
                var expression = Expression(c, columnConstraints: true);
                if (expression.Count == 0) throw c.Error("expected a default expression");
                constraints.Add(new ColumnConstraint(ColumnConstraintKind.Default, at, expression));
            }
            else if (c.Accept("UNIQUE"))
            {
                IndexParameters(c);
                constraints.Add(new ColumnConstraint(ColumnConstraintKind.Unique, at, []));
            }
            else if (c.Accept("PRIMARY"))
            {
                c.Expect("KEY");
                IndexParameters(c);
                constraints.Add(new ColumnConstraint(ColumnConstraintKind.PrimaryKey, at, []));
            }
            else if (c.Accept("CHECK"))
            {
                Group(c);
                c.Accept("NO", "INHERIT");
                constraints.Add(new ColumnConstraint(ColumnConstraintKind.Check, at, []));
            }
            else if (c.Accept("REFERENCES"))
            {
                References(c);
                constraints.Add(new ColumnConstraint(ColumnConstraintKind.References, at, []));
            }
            else if (c.Accept("GENERATED")) constraints.Add(Generated(c, at));
            else if (c.Accept("COLLATE")) Name(c, "a collation name");
            else throw c.Error("expected a column constraint");
        }
        return new ColumnDefinition(name, type, typeToken, [.. constraints]);
    }

    private static ColumnConstraint Generated(TokenCursor c, SqlToken at)
    {
        if (!c.Accept("ALWAYS"))
        {
            c.Expect("BY");
            c.Expect("DEFAULT");
        }
        c.Expect("AS");
        if (c.Accept("IDENTITY"))
        {
            if (c.IsKind(SqlTokenKind.OpenParen)) c.SkipGroup();
            return new ColumnConstraint(ColumnConstraintKind.Identity, at, []);
        }
        var start = c.Position;
        Group(c);
        var expression = Slice(c, start, c.Position);
        // PostgreSQL 18's VIRTUAL columns are computed on read: no rewrite, so no finding.
        if (c.Accept("VIRTUAL")) return new ColumnConstraint(ColumnConstraintKind.GeneratedVirtual, at, expression);
        c.Accept("STORED");
        return new ColumnConstraint(ColumnConstraintKind.GeneratedStored, at, expression);
    }

    private static bool IsTableConstraintStart(TokenCursor c) =>
        c.Is("CONSTRAINT") || c.Is("CHECK") || c.Is("UNIQUE") || (c.Is("PRIMARY") && c.Is("KEY", 1))
        || (c.Is("FOREIGN") && c.Is("KEY", 1)) || (c.Is("EXCLUDE") && (c.Is("USING", 1) || c.IsKind(SqlTokenKind.OpenParen, 1)));

    private static TableConstraint TableConstraint(TokenCursor c)
    {
        string? name = null;
        if (c.Accept("CONSTRAINT")) name = Name(c, "a constraint name").Key;
        var at = c.Current;
        TableConstraintKind kind;
        var usingIndex = false;
        string? notNullColumn = null;
        QualifiedName? referenced = null;
        string? columns = null;
        if (c.Accept("CHECK"))
        {
            kind = TableConstraintKind.Check;
            var start = c.Position;
            Group(c);
            notNullColumn = IsNotNullColumn(c, start, c.Position);
        }
        else if (c.Accept("UNIQUE") || c.Accept("PRIMARY", "KEY"))
        {
            kind = c.Statement.IsKeyword(c.Position - 1, "KEY") ? TableConstraintKind.PrimaryKey : TableConstraintKind.Unique;
            if (c.Accept("NULLS"))
            {
                c.Accept("NOT");
                c.Expect("DISTINCT");
            }
            if (c.Is("USING") && c.Is("INDEX", 1) && !c.Is("TABLESPACE", 2))
            {
                c.Position += 2;
                Name(c, "an index name");
                usingIndex = true;
            }
            else
            {
                columns = GroupText(c);
                IndexParameters(c);
            }
        }
        else if (c.Accept("FOREIGN", "KEY"))
        {
            kind = TableConstraintKind.ForeignKey;
            columns = GroupText(c);
            c.Expect("REFERENCES");
            referenced = References(c);
        }
        else if (c.Accept("EXCLUDE"))
        {
            kind = TableConstraintKind.Exclude;
            if (c.Accept("USING")) c.Advance();
            Group(c);
            IndexParameters(c);
            if (c.Accept("WHERE")) Group(c);
        }
        else throw c.Error("expected CHECK, UNIQUE, PRIMARY KEY, FOREIGN KEY or EXCLUDE");

        var notValid = false;
        while (!c.AtEnd && !c.IsKind(SqlTokenKind.Comma) && !c.IsKind(SqlTokenKind.CloseParen))
        {
            if (c.Accept("NOT", "VALID")) notValid = true;
            else if (c.Accept("NOT", "DEFERRABLE") || c.Accept("DEFERRABLE") || c.Accept("NO", "INHERIT")
                     || c.Accept("NOT", "ENFORCED") || c.Accept("ENFORCED")) { }
            else if (c.Accept("INITIALLY")) c.Advance();
            else throw c.Error("expected NOT VALID, DEFERRABLE, ',' or the end of the constraint");
        }
        return new TableConstraint(kind, name, at, notValid, usingIndex, notNullColumn, referenced, columns);
    }

    /// <summary>REFERENCES table [(cols)] [MATCH ...] [ON DELETE|UPDATE action]...; at the table name.</summary>
    private static QualifiedName References(TokenCursor c)
    {
        var table = Name(c, "a referenced table name");
        if (c.IsKind(SqlTokenKind.OpenParen)) c.SkipGroup();
        while (true)
        {
            if (c.Accept("MATCH")) c.Advance();
            else if (c.Is("ON") && (c.Is("DELETE", 1) || c.Is("UPDATE", 1)))
            {
                c.Position += 2;
                if (c.Accept("NO")) c.Expect("ACTION");
                else if (c.Accept("SET"))
                {
                    c.Advance(); // NULL | DEFAULT
                    if (c.IsKind(SqlTokenKind.OpenParen)) c.SkipGroup();
                }
                else if (!(c.Accept("CASCADE") || c.Accept("RESTRICT"))) throw c.Error("expected a referential action");
            }
            else return table;
        }
    }

    /// <summary>The optional tail of UNIQUE / PRIMARY KEY / EXCLUDE: INCLUDE, WITH, USING INDEX TABLESPACE, NULLS.</summary>
    private static void IndexParameters(TokenCursor c)
    {
        while (true)
        {
            if (c.Accept("INCLUDE") || c.Accept("WITH")) Group(c);
            else if (c.Is("USING") && c.Is("INDEX", 1) && c.Is("TABLESPACE", 2))
            {
                c.Position += 3;
                Name(c, "a tablespace name");
            }
            else if (c.Accept("NULLS"))
            {
                c.Accept("NOT");
                c.Expect("DISTINCT");
            }
            else return;
        }
    }

    /// <summary>
    /// A type name as written: words, dots, modifiers in parentheses and array brackets, up to the first column
    /// constraint keyword, ',' or ')'.
    /// </summary>
    private static (string Text, SqlToken Token) TypeName(TokenCursor c, string? alsoStopAt)
    {
        var start = c.Position;
        while (!c.AtEnd && !c.IsKind(SqlTokenKind.Comma) && !c.IsKind(SqlTokenKind.CloseParen))
        {
            if (c.IsKind(SqlTokenKind.OpenParen) || c.IsKind(SqlTokenKind.OpenBracket))
            {
                if (c.Position == start) break;
                c.SkipGroup();
                continue;
            }
            if (c.IsKind(SqlTokenKind.Word) && (IsColumnConstraintWord(c) || (alsoStopAt is not null && c.Is(alsoStopAt)))) break;
            if (!(c.IsKind(SqlTokenKind.Word) || c.IsKind(SqlTokenKind.QuotedIdentifier) || c.IsKind(SqlTokenKind.Dot) || c.IsKind(SqlTokenKind.Number)))
                break;
            c.Advance();
        }
        if (c.Position == start) throw c.Error("expected a type name");
        var first = c.Statement.Tokens[start];
        var last = c.Statement.Tokens[c.Position - 1];
        return (c.Statement.Text.Substring(first.Offset - c.Statement.Offset, last.End - first.Offset), first);
    }

    private static bool IsColumnConstraintWord(TokenCursor c)
    {
        foreach (var word in ColumnConstraintWords)
            if (c.Is(word)) return true;
        return false;
    }

    /// <summary>
    /// The tokens of an expression up to ',' or ')' at depth zero, or (in a column definition) the next column
    /// constraint keyword.
    /// </summary>
    private static IReadOnlyList<SqlToken> Expression(TokenCursor c, bool columnConstraints)
    {
        var start = c.Position;
        while (!c.AtEnd && !c.IsKind(SqlTokenKind.Comma) && !c.IsKind(SqlTokenKind.CloseParen))
        {
            if (c.IsKind(SqlTokenKind.OpenParen) || c.IsKind(SqlTokenKind.OpenBracket))
            {
                c.SkipGroup();
                continue;
            }
            if (columnConstraints && c.Position > start && c.IsKind(SqlTokenKind.Word) && IsColumnConstraintWord(c)
                && !(c.Is("NOT") && !(c.Is("NULL", 1) || c.Is("DEFERRABLE", 1))))
                break;
            c.Advance();
        }
        return Slice(c, start, c.Position);
    }

    private static void Group(TokenCursor c)
    {
        if (!c.IsKind(SqlTokenKind.OpenParen)) throw c.Error("expected '('");
        c.SkipGroup();
    }

    private static string GroupText(TokenCursor c)
    {
        var first = c.Current;
        Group(c);
        var last = c.Statement.Tokens[c.Position - 1];
        return c.Statement.Text.Substring(first.Offset - c.Statement.Offset, last.End - first.Offset);
    }

    private static IReadOnlyList<SqlToken> Slice(TokenCursor c, int start, int end)
    {
        var result = new SqlToken[end - start];
        for (var i = start; i < end; i++) result[i - start] = c.Statement.Tokens[i];
        return result;
    }

    /// <summary>For CHECK's parenthesised tokens [start, end): the column when it reads <c>(col IS NOT NULL)</c>.</summary>
    private static string? IsNotNullColumn(TokenCursor c, int start, int end)
    {
        var s = c.Statement;
        while (end - start >= 2 && s.Tokens[start].Kind == SqlTokenKind.OpenParen && s.Tokens[end - 1].Kind == SqlTokenKind.CloseParen)
        {
            start++;
            end--;
        }
        if (end - start != 4 || !s.IsKeyword(start + 1, "IS") || !s.IsKeyword(start + 2, "NOT") || !s.IsKeyword(start + 3, "NULL"))
            return null;
        var column = s.Tokens[start];
        return column.Kind is SqlTokenKind.Word or SqlTokenKind.QuotedIdentifier ? NameKey(s.TokenText(column), column.Kind) : null;
    }

    // ---- names ----

    private static bool AcceptIfNotExists(TokenCursor c)
    {
        if (!(c.Is("IF") && c.Is("NOT", 1) && c.Is("EXISTS", 2))) return false;
        c.Position += 3;
        return true;
    }

    private static void AcceptStar(TokenCursor c)
    {
        if (c.IsKind(SqlTokenKind.Operator) && c.Statement.TokenSpan(c.Current).SequenceEqual("*")) c.Advance();
    }

    private static QualifiedName Name(TokenCursor c, string what)
    {
        if (!(c.IsKind(SqlTokenKind.Word) || c.IsKind(SqlTokenKind.QuotedIdentifier))) throw c.Error($"expected {what}");
        var first = c.Advance();
        var display = c.Text(first);
        var key = NameKey(display, first.Kind);
        while (c.IsKind(SqlTokenKind.Dot) && (c.IsKind(SqlTokenKind.Word, 1) || c.IsKind(SqlTokenKind.QuotedIdentifier, 1)))
        {
            c.Advance();
            var part = c.Advance();
            var text = c.Text(part);
            display = display + "." + text;
            key = key + "." + NameKey(text, part.Kind);
        }
        return new QualifiedName(display, key, first);
    }

    /// <summary>What PostgreSQL stores: unquoted names folded to lower case, quoted ones verbatim.</summary>
    internal static string NameKey(string text, SqlTokenKind kind)
    {
        if (kind == SqlTokenKind.QuotedIdentifier)
        {
            var inner = text.StartsWith('U') || text.StartsWith('u') ? text[3..^1] : text[1..^1];
            return inner.Replace("\"\"", "\"", StringComparison.Ordinal);
        }
        return text.ToLowerInvariant();
    }
}
