using Cutover.Migrations.Lint;
using static Cutover.Tests.Migrations.LintRuleTests;

namespace Cutover.Tests.Migrations;

public class SuppressionTests
{
    [Fact]
    public void Ignore_comment_suppresses_the_named_rules_for_the_next_statement_only()
    {
        var result = Lint(
            "SET lock_timeout = '1s';\n" +
            "-- cutover:ignore ban-drop-column, renaming-column\n" +
            "ALTER TABLE users DROP COLUMN a;\n" +
            "ALTER TABLE users DROP COLUMN b;");
        Assert.Equal(4, Assert.Single(Of(result, RuleIds.BanDropColumn)).Line);
    }

    [Fact]
    public void Ignore_comment_must_be_directly_above()
    {
        var result = Lint("-- cutover:ignore ban-drop-column\n\nALTER TABLE users DROP COLUMN a;");
        Assert.Single(Of(result, RuleIds.BanDropColumn));
        // Stacked comments directly above all count; a block comment on the same line too.
        Assert.Empty(Of(Lint("-- cutover:ignore ban-drop-column\n-- because the column was never read\nALTER TABLE users DROP COLUMN a;"), RuleIds.BanDropColumn));
        Assert.Empty(Of(Lint("/* cutover:ignore ban-drop-column */ ALTER TABLE users DROP COLUMN a;"), RuleIds.BanDropColumn));
    }

    [Fact]
    public void Ignore_leaves_other_rules()
    {
        var result = Lint("-- cutover:ignore require-lock-timeout\nALTER TABLE users DROP COLUMN a;");
        Assert.Empty(Of(result, RuleIds.RequireLockTimeout));
        Assert.Single(Of(result, RuleIds.BanDropColumn));
    }

    [Fact]
    public void Safety_assured_suppresses_everything_and_records_the_reason()
    {
        var result = Lint("SELECT 1;\n-- cutover:safety-assured old code stopped reading name in deploy 2\nALTER TABLE users DROP COLUMN name;");
        Assert.Empty(result.Findings);
        var assured = Assert.Single(result.Assured);
        Assert.Equal(("m.sql", 3, "old code stopped reading name in deploy 2", "ALTER TABLE users DROP COLUMN name"),
            (assured.File, assured.Line, assured.Reason, assured.Statement));
    }

    [Fact]
    public void Safety_assured_does_not_hide_syntax_errors()
    {
        var result = Lint("-- cutover:safety-assured reviewed\nALTER TABLE users ADD COLUMN;");
        Assert.Equal(RuleIds.SyntaxError, Assert.Single(result.Findings).Rule);
    }

    [Fact]
    public void Syntax_errors_are_suppressed_only_when_named()
    {
        Assert.Empty(Lint("-- cutover:ignore syntax-error\nALTER TABLE users ADD COLUMN;").Findings);
        Assert.Single(Lint("-- cutover:ignore ban-drop-column\nALTER TABLE users ADD COLUMN;").Findings);
        var excluded = new LintOptions { ExcludedRules = new HashSet<string> { RuleIds.SyntaxError } };
        Assert.Empty(Lint("ALTER TABLE users ADD COLUMN;", excluded).Findings);
        Assert.Empty(Lint("SELECT 'open", excluded).Findings);
    }

    [Fact]
    public void Safety_assured_without_a_reason_is_an_error_and_suppresses_nothing()
    {
        var result = Lint("-- cutover:safety-assured\nALTER TABLE users DROP COLUMN name;");
        var missing = Assert.Single(Of(result, RuleIds.SafetyAssuredWithoutReason));
        Assert.Equal((1, 1, Severity.Error), (missing.Line, missing.Column, missing.Severity));
        Assert.Single(Of(result, RuleIds.BanDropColumn));
        Assert.Empty(result.Assured);
    }

    [Fact]
    public void Excluded_rules_never_report()
    {
        var options = new LintOptions { ExcludedRules = new HashSet<string> { RuleIds.BanDropColumn, RuleIds.RequireLockTimeout } };
        var result = Lint("ALTER TABLE users DROP COLUMN a;\nALTER TABLE users RENAME COLUMN b TO c;", options);
        Assert.Empty(Of(result, RuleIds.BanDropColumn));
        Assert.Empty(Of(result, RuleIds.RequireLockTimeout));
        Assert.Single(Of(result, RuleIds.RenamingColumn));
    }
}
