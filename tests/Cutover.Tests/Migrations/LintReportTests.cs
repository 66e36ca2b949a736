using System.Text.Json;
using Cutover.Migrations.Lint;

namespace Cutover.Tests.Migrations;

public class LintReportTests
{
    private static IReadOnlyList<FileLintResult> DropColumn() =>
        [new MigrationLinter(new LintOptions { LockTimeoutSetByRunner = true }).Lint("db/001.sql", "-- drop the old column\nALTER TABLE users DROP COLUMN name;")];

    private static string Render(IReadOnlyList<FileLintResult> results, LintFormat format)
    {
        var writer = new StringWriter { NewLine = "\n" };
        LintReport.Write(writer, results, format);
        return writer.ToString();
    }

    [Fact]
    public void Json_is_an_array_of_findings_with_snake_case_keys()
    {
        using var doc = JsonDocument.Parse(Render(DropColumn(), LintFormat.Json));
        var item = Assert.Single(doc.RootElement.EnumerateArray());
        Assert.Equal(["file", "line", "column", "rule", "severity", "message", "lock", "safe_alternative"], item.EnumerateObject().Select(p => p.Name));
        Assert.Equal("db/001.sql", item.GetProperty("file").GetString());
        Assert.Equal(2, item.GetProperty("line").GetInt32());
        Assert.Equal(19, item.GetProperty("column").GetInt32());
        Assert.Equal("ban-drop-column", item.GetProperty("rule").GetString());
        Assert.Equal("error", item.GetProperty("severity").GetString());
        Assert.Equal("ACCESS EXCLUSIVE", item.GetProperty("lock").GetString());
        Assert.Contains("users", item.GetProperty("message").GetString());
        Assert.StartsWith("1. ", item.GetProperty("safe_alternative").GetString());
    }

    [Fact]
    public void Json_of_no_findings_is_an_empty_array()
    {
        using var doc = JsonDocument.Parse(Render([new FileLintResult("a.sql", [], [])], LintFormat.Json));
        Assert.Equal(0, doc.RootElement.GetArrayLength());
    }

    [Fact]
    public void Github_annotations_escape_data_and_properties()
    {
        var finding = new LintFinding("a,b:c.sql", 3, 4, "rule-x", Severity.Warning, "50% done\r\nnext", "", "", "", 3, 1);
        Assert.Equal("::warning file=a%2Cb%3Ac.sql,line=3,col=4,title=rule-x::50%25 done%0D%0Anext\n",
            Render([new FileLintResult("a,b:c.sql", [finding], [])], LintFormat.GitHub));

        Assert.Equal(
            "::error file=db/001.sql,line=2,col=19,title=ban-drop-column::Dropping column name from users breaks the running version of the application, which still reads or writes it.\n",
            Render(DropColumn(), LintFormat.GitHub));
    }

    [Fact]
    public void Gcc_lines_are_file_line_column_level_rule_message()
    {
        Assert.Equal(
            "db/001.sql:2:19: error: [ban-drop-column] Dropping column name from users breaks the running version of the application, which still reads or writes it.\n",
            Render(DropColumn(), LintFormat.Gcc));
    }

    [Fact]
    public void Human_shows_the_statement_a_caret_the_lock_the_safe_way_and_a_summary()
    {
        var lines = Render(DropColumn(), LintFormat.Human).Split('\n');
        Assert.StartsWith("db/001.sql:2:19  error  ban-drop-column  Dropping column name from users", lines[0]);
        Assert.Equal("    2 | ALTER TABLE users DROP COLUMN name", lines[1]);
        Assert.Equal("      |                   ^", lines[2]);
        Assert.Equal("    lock: ACCESS EXCLUSIVE", lines[3]);
        Assert.Equal("    safe alternative:", lines[4]);
        Assert.StartsWith("      1. deploy code that no longer reads or writes users.name", lines[5]);
        Assert.Equal("1 file, 1 error, 0 warnings", lines[^2]);
    }

    [Fact]
    public void Human_lists_safety_assurances()
    {
        var results = new[] { new MigrationLinter(new LintOptions()).Lint("m.sql", "-- cutover:safety-assured nobody reads it\nDROP TABLE t;") };
        var text = Render(results, LintFormat.Human);
        Assert.Contains("m.sql:2  safety-assured  nobody reads it", text);
        Assert.EndsWith("1 file, 0 errors, 0 warnings\n", text);
    }
}
