using Cutover.Migrations.Sql;

namespace Cutover.Tests.Migrations;

public class SqlScriptTests
{
    private static IReadOnlyList<string> Texts(string sql) => SqlScript.Split(sql).Select(s => s.Text).ToList();

    [Theory]
    [InlineData("SELECT $fn$ a; $$ b; $fn$; SELECT 2;", "SELECT $fn$ a; $$ b; $fn$")]
    [InlineData("SELECT $$ a; $$; SELECT 2;", "SELECT $$ a; $$")]
    [InlineData("/* a /* b; */ c; */ SELECT 1; SELECT 2;", "SELECT 1")]
    [InlineData("SELECT E'it\\'s; here'; SELECT 2;", "SELECT E'it\\'s; here'")]
    [InlineData("SELECT 'it''s; here'; SELECT 2;", "SELECT 'it''s; here'")]
    [InlineData("SELECT \"a\"\"b;\"; SELECT 2;", "SELECT \"a\"\"b;\"")]
    [InlineData("SELECT 1 -- x; y\n; SELECT 2;", "SELECT 1")]
    [InlineData("SELECT U&'d\\0061t; a'; SELECT 2;", "SELECT U&'d\\0061t; a'")]
    [InlineData("SELECT B'1;0', X'1F;'; SELECT 2;", "SELECT B'1;0', X'1F;'")]
    public void Semicolons_inside_strings_comments_and_bodies_do_not_split(string sql, string first)
    {
        var texts = Texts(sql);
        Assert.Equal([first, "SELECT 2"], texts);
    }

    [Fact]
    public void A_positional_parameter_is_not_a_dollar_quote()
    {
        Assert.Equal(["SELECT $1", "SELECT $2 + 1"], Texts("SELECT $1; SELECT $2 + 1;"));
        var tokens = SqlLexer.Tokenize("SELECT $1::int");
        Assert.Equal([SqlTokenKind.Word, SqlTokenKind.Parameter, SqlTokenKind.Cast, SqlTokenKind.Word], tokens.Select(t => t.Kind));
    }

    [Fact]
    public void A_tagged_body_may_contain_other_dollar_quotes()
    {
        var sql = "CREATE FUNCTION f() RETURNS text AS $body$\nBEGIN\n  RETURN $$x;$$;\nEND;\n$body$ LANGUAGE plpgsql;\nSELECT 1;";
        var statements = SqlScript.Split(sql);
        Assert.Equal(2, statements.Count);
        Assert.Equal(6, statements[1].Line);
    }

    [Fact]
    public void Statements_carry_text_position_and_leading_comments()
    {
        var statements = SqlScript.Split("\n  -- first\n  SELECT 1 ;\n/* two */ SELECT\n 2");
        Assert.Equal(2, statements.Count);
        Assert.Equal("SELECT 1", statements[0].Text);
        Assert.Equal((3, 3), (statements[0].Line, statements[0].Column));
        Assert.Equal("-- first", Assert.Single(statements[0].LeadingComments).Text);
        Assert.Equal("SELECT\n 2", statements[1].Text);
        Assert.Equal((4, 11), (statements[1].Line, statements[1].Column));
        Assert.Equal("/* two */", Assert.Single(statements[1].LeadingComments).Text);
    }

    [Fact]
    public void Token_positions_count_lines_inside_multi_line_tokens()
    {
        var sql = "SELECT 'a\nb', /* x\ny */ $$\n$$, \"q\nr\" FROM t";
        var from = SqlLexer.Tokenize(sql).Single(t => t.Is(sql, "FROM"));
        Assert.Equal((5, 4), (from.Line, from.Column));
    }

    [Fact]
    public void Psql_meta_commands_are_skipped()
    {
        Assert.Equal(["SELECT 1", "SELECT 2"], Texts("\\set ON_ERROR_STOP on\nSELECT 1;\n  \\echo done\nSELECT 2;"));
    }

    [Fact]
    public void Sql_standard_function_bodies_keep_their_semicolons()
    {
        var sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 2 END; END;\nSELECT 3;";
        var texts = Texts(sql);
        Assert.Equal(2, texts.Count);
        Assert.Equal("SELECT 3", texts[1]);
    }

    [Fact]
    public void Keywords_are_case_insensitive_and_casts_are_one_token()
    {
        var sql = "alter TABLE x";
        var tokens = SqlLexer.Tokenize(sql);
        Assert.True(tokens[0].Is(sql, "ALTER"));
        Assert.Equal(SqlTokenKind.Cast, SqlLexer.Tokenize("a::b")[1].Kind);
        Assert.Equal(SqlTokenKind.Number, SqlLexer.Tokenize("1.5e-3")[0].Kind);
        Assert.Single(SqlLexer.Tokenize("1.5e-3"));
    }

    [Theory]
    [InlineData("SELECT 1;\nSELECT 'abc;\n", 2, 8, "unterminated quoted string")]
    [InlineData("SELECT 1 /* a /* b */", 1, 10, "unterminated /* comment")]
    [InlineData("\n  DO $x$ BEGIN END $y$", 2, 6, "unterminated dollar-quoted string $x$")]
    [InlineData("SELECT \"abc", 1, 8, "unterminated quoted identifier")]
    [InlineData("SELECT E'a\\'", 1, 8, "unterminated quoted string")]
    public void Unterminated_tokens_are_syntax_errors_with_a_position(string sql, int line, int column, string message)
    {
        var e = Assert.Throws<SqlSyntaxException>(() => SqlScript.Split(sql));
        Assert.Equal((line, column, message), (e.Line, e.Column, e.Message));
    }

    [Theory]
    [InlineData("BEGIN", true)]
    [InlineData("begin transaction isolation level serializable", true)]
    [InlineData("START TRANSACTION", true)]
    [InlineData("COMMIT", true)]
    [InlineData("END", true)]
    [InlineData("ROLLBACK", true)]
    [InlineData("ROLLBACK TO SAVEPOINT a", false)]
    [InlineData("ROLLBACK TO a", false)]
    [InlineData("COMMIT PREPARED 'x'", false)]
    [InlineData("SAVEPOINT a", false)]
    [InlineData("SELECT 1", false)]
    public void Transaction_control_is_recognised(string sql, bool expected) =>
        Assert.Equal(expected, Assert.Single(SqlScript.Split(sql)).IsTransactionControl);

    [Theory]
    [InlineData("CREATE INDEX CONCURRENTLY i ON t (a)", true)]
    [InlineData("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a)", true)]
    [InlineData("DROP INDEX CONCURRENTLY i", true)]
    [InlineData("REINDEX (VERBOSE) TABLE CONCURRENTLY t", true)]
    [InlineData("VACUUM ANALYZE t", true)]
    [InlineData("CREATE DATABASE d", true)]
    [InlineData("DROP DATABASE d", true)]
    [InlineData("CREATE TABLESPACE s LOCATION '/x'", true)]
    [InlineData("DROP TABLESPACE s", true)]
    [InlineData("ALTER SYSTEM SET work_mem = '64MB'", true)]
    [InlineData("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY", true)]
    [InlineData("ALTER TABLE p DETACH PARTITION p1", false)]
    [InlineData("CREATE INDEX i ON t (a)", false)]
    [InlineData("REINDEX TABLE t", false)]
    [InlineData("SELECT 'VACUUM'", false)]
    public void Statements_that_cannot_run_in_a_transaction_are_marked(string sql, bool expected) =>
        Assert.Equal(expected, Assert.Single(SqlScript.Split(sql)).CannotRunInTransaction);
}
