using Cutover.Migrations.Sql;

namespace Cutover.Tests.Migrations;

public class SqlParserTests
{
    private static ParsedStatement Parse(string sql) => SqlParser.Parse(Assert.Single(SqlScript.Split(sql)));

    [Fact]
    public void Alter_table_with_several_actions()
    {
        var alter = Assert.IsType<AlterTableStatement>(Parse(
            "ALTER TABLE IF EXISTS ONLY public.\"Users\" ADD COLUMN IF NOT EXISTS a varchar(20)[] NOT NULL DEFAULT 'x'::text COLLATE \"C\", " +
            "ALTER COLUMN b SET DATA TYPE numeric(10, 2) USING b::numeric, ALTER b SET NOT NULL, DROP COLUMN IF EXISTS c CASCADE, " +
            "ADD CONSTRAINT fk FOREIGN KEY (d) REFERENCES other (id) ON DELETE SET NULL NOT VALID, VALIDATE CONSTRAINT fk, SET (fillfactor = 70)"));
        Assert.Equal("public.Users", alter.Table.Key);
        Assert.Equal("public.\"Users\"", alter.Table.Display);
        var add = Assert.IsType<AddColumnAction>(alter.Actions[0]);
        Assert.True(add.IfNotExists);
        Assert.Equal("varchar(20)[]", add.Column.Type);
        Assert.Equal([ColumnConstraintKind.NotNull, ColumnConstraintKind.Default], add.Column.Constraints.Select(c => c.Kind));
        Assert.Equal("numeric(10, 2)", Assert.IsType<AlterColumnTypeAction>(alter.Actions[1]).Type);
        Assert.IsType<SetNotNullAction>(alter.Actions[2]);
        Assert.True(Assert.IsType<DropColumnAction>(alter.Actions[3]).IfExists);
        var fk = Assert.IsType<AddConstraintAction>(alter.Actions[4]).Constraint;
        Assert.Equal((TableConstraintKind.ForeignKey, true, "other", "(d)"), (fk.Kind, fk.NotValid, fk.ReferencedTable!.Key, fk.Columns));
        Assert.Equal("fk", Assert.IsType<ValidateConstraintAction>(alter.Actions[5]).Name);
        Assert.Equal(PgLock.ShareUpdateExclusive, Assert.IsType<OtherAction>(alter.Actions[6]).Lock);
    }

    [Fact]
    public void Check_is_not_null_names_its_column()
    {
        var alter = Assert.IsType<AlterTableStatement>(Parse("ALTER TABLE t ADD CONSTRAINT c CHECK ((\"Email\" IS NOT NULL)) NOT VALID"));
        var check = Assert.IsType<AddConstraintAction>(alter.Actions[0]).Constraint;
        Assert.Equal(("Email", true, "c"), (check.NotNullColumn, check.NotValid, check.Name));
    }

    [Fact]
    public void Create_table_index_drop_truncate_set()
    {
        var create = Assert.IsType<CreateTableStatement>(Parse(
            "CREATE UNLOGGED TABLE IF NOT EXISTS t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, total numeric CHECK (total > 0), " +
            "user_id bigint REFERENCES users ON DELETE CASCADE, CONSTRAINT u UNIQUE (total), LIKE other INCLUDING ALL) WITH (fillfactor = 90)"));
        Assert.Equal(("t", true, 3), (create.Table.Key, create.IfNotExists, create.Columns.Count));

        var index = Assert.IsType<CreateIndexStatement>(Parse("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON ONLY t USING btree (lower(a)) WHERE a IS NOT NULL"));
        Assert.Equal((true, true, true, "i", "t"), (index.Unique, index.Concurrently, index.IfNotExists, index.Name!.Key, index.Table.Key));

        var drop = Assert.IsType<DropStatement>(Parse("DROP INDEX CONCURRENTLY IF EXISTS a, b CASCADE"));
        Assert.Equal((DropKind.Index, true, true, 2), (drop.Kind, drop.Concurrently, drop.IfExists, drop.Names.Count));

        var truncate = Assert.IsType<TruncateStatement>(Parse("TRUNCATE TABLE ONLY a, b * RESTART IDENTITY CASCADE"));
        Assert.Equal(["a", "b"], truncate.Tables.Select(t => t.Key));

        var set = Assert.IsType<SetStatement>(Parse("SET LOCAL lock_timeout TO '1s'"));
        Assert.Equal(("lock_timeout", "'1s'", true), (set.Name, set.Value, set.Local));
        Assert.Null(Assert.IsType<SetStatement>(Parse("RESET lock_timeout")).Value);
    }

    [Theory]
    [InlineData("DO $$ BEGIN ALTER TABLE users DROP COLUMN name; END $$")]
    [InlineData("CREATE VIEW v AS SELECT 1")]
    [InlineData("DROP VIEW v")]
    [InlineData("UPDATE users SET a = 1")]
    [InlineData("ALTER INDEX i RENAME TO j")]
    public void Statements_not_modelled_are_opaque(string sql) => Assert.IsType<OpaqueStatement>(Parse(sql));

    [Theory]
    [InlineData("ALTER TABLE users ADD COLUMN", 1, 29)]
    [InlineData("ALTER TABLE users ADD COLUMN x int NOT DEFERRABLE BOGUS", 1, 51)]
    [InlineData("ALTER TABLE users\n  ADD COLUMN x int,\n  DROP", 3, 7)]
    [InlineData("CREATE INDEX ON", 1, 16)]
    [InlineData("ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT SURE", 1, 46)]
    public void Modelled_statements_that_do_not_parse_throw_at_the_token(string sql, int line, int column)
    {
        var e = Assert.Throws<SqlSyntaxException>(() => Parse(sql));
        Assert.Equal((line, column), (e.Line, e.Column));
    }
}
