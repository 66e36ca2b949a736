using Cutover.Migrations.Sql;

namespace Cutover.Migrations.Lint;

/// <summary>
/// Lints migration files: splits each into statements, parses the DDL, runs the rules in file order (some depend
/// on earlier statements), then applies the suppression comments. Files are independent, so
/// <see cref="LintPaths"/> lints them in parallel.
/// </summary>
public sealed class MigrationLinter(LintOptions options)
{
    private static readonly ILintRule[] Rules =
    [
        new AddingRequiredField(), new AddingFieldWithDefault(), new AddingNotNullableField(), new ChangingColumnType(),
        new BanDropColumn(), new RenamingColumn(), new RenamingTable(), new BanDropTable(), new BanDropDatabase(), new BanTruncate(),
        new RequireConcurrentIndexCreation(), new RequireConcurrentIndexDeletion(), new BanConcurrentIndexCreationInTransaction(),
        new ConstraintMissingNotValid(), new AddingForeignKeyConstraint(), new DisallowedUniqueConstraint(),
        new AddingSerialPrimaryKeyField(), new RequireLockTimeout(), new PreferRobustStmts(), new TransactionNesting(),
    ];

    private readonly LintOptions _options = options;

    public FileLintResult Lint(string file, string text)
    {
        IReadOnlyList<SqlStatement> statements;
        try
        {
            statements = SqlScript.Split(text);
        }
        catch (SqlSyntaxException e)
        {
            // Nothing after an unterminated string or comment can be trusted, so this is the file's only finding.
            if (_options.ExcludedRules.Contains(RuleIds.SyntaxError)) return new FileLintResult(file, [], []);
            var finding = new LintFinding(file, e.Line, e.Column, RuleIds.SyntaxError, Severity.Error,
                $"{e.Message}: nothing after it can be checked", "", LexerAdvice(e.Message), LineAt(text, e.Line), e.Line, 1);
            return new FileLintResult(file, [finding], []);
        }

        var state = new FileState { ChangingStatements = statements.Count(s => !s.IsTransactionControl && !IsSetting(s)) };
        var findings = new List<LintFinding>();
        var assured = new List<SafetyAssurance>();
        foreach (var statement in statements)
        {
            ParsedStatement parsed;
            LintContext context;
            try
            {
                parsed = SqlParser.Parse(statement);
                context = new LintContext(file, _options, state, statement, parsed);
                foreach (var rule in Rules) rule.Check(context);
            }
            catch (SqlSyntaxException e)
            {
                parsed = new OpaqueStatement(statement);
                context = new LintContext(file, _options, state, statement, parsed);
                context.Report(RuleIds.SyntaxError, new SqlToken(SqlTokenKind.Word, 0, 0, e.Line, e.Column), e.Message,
                    "1. fix the statement\n2. if it is valid PostgreSQL that Cutover's parser does not know, put -- cutover:ignore syntax-error above it (its other checks are skipped) and report it");
            }
            Suppress(context, assured);
            findings.AddRange(context.Findings);
            state.Apply(parsed);
        }
        if (state.InTransaction && state.OpenBegin is { } begin && !_options.ExcludedRules.Contains(RuleIds.TransactionNesting))
            findings.Add(new LintFinding(file, begin.Line, begin.Column, RuleIds.TransactionNesting, Severity.Error,
                $"The transaction opened at line {begin.Line} is never committed: the runner's COMMIT or the end of the session decides what happens to it.",
                "", "1. end the file with COMMIT;", begin.Text, begin.Line, begin.Column));
        // Rules run in a fixed order; readers (and editors jumping through gcc output) want file order.
        // OrderBy is stable, so findings at one token keep rule order.
        return new FileLintResult(file, findings.OrderBy(f => f.Line).ThenBy(f => f.Column).ToList(), assured);
    }

    /// <summary>*.sql files under the given directories (and the files given), sorted by path, linted in parallel.</summary>
    public IReadOnlyList<FileLintResult> LintPaths(IEnumerable<string> pathsOrDirectories, IEnumerable<string>? excludeGlobs = null)
    {
        var files = MigrationFiles.Find(pathsOrDirectories, excludeGlobs ?? []);
        var results = new FileLintResult[files.Count];
        Parallel.For(0, files.Count, i => results[i] = Lint(files[i], File.ReadAllText(files[i])));
        return results;
    }

    private void Suppress(LintContext context, List<SafetyAssurance> assured)
    {
        var suppressions = Suppressions.For(context.Statement);
        // syntax-error too, when named: the escape hatch for valid SQL the parser does not know.
        if (suppressions.Ignored.Count > 0)
            context.Findings.RemoveAll(f => suppressions.Ignored.Contains(f.Rule));
        if (suppressions.SafetyComment is not { } comment) return;
        if (string.IsNullOrEmpty(suppressions.SafetyReason))
        {
            if (!_options.ExcludedRules.Contains(RuleIds.SafetyAssuredWithoutReason))
                context.Findings.Add(new LintFinding(context.File, comment.Line, comment.Column, RuleIds.SafetyAssuredWithoutReason, Severity.Error,
                    "cutover:safety-assured needs a reason: write why this statement is safe, for the next reader and the deploy record.",
                    "", "1. -- cutover:safety-assured <why it is safe, e.g. old code stopped reading the column in deploy N>",
                    comment.Text, comment.Line, comment.Column));
            return;
        }
        context.Findings.RemoveAll(f => f.Rule != RuleIds.SyntaxError);
        assured.Add(new SafetyAssurance(context.File, context.Statement.Line, suppressions.SafetyReason, context.Statement.Text));
    }

    private static string LexerAdvice(string message) =>
        message.Contains("comment", StringComparison.Ordinal) ? "1. close the /* comment with */ (block comments nest: each /* inside needs its own */)"
        : message.Contains("dollar", StringComparison.Ordinal) ? "1. close the body with the same $tag$ that opened it"
        : message.Contains("identifier", StringComparison.Ordinal) ? "1. close the \"quoted identifier\" (a \" inside it is written \"\")"
        : "1. close the string (a ' inside a string is written '', or \\' inside E'...')";

    private static bool IsSetting(SqlStatement s) => s.IsKeyword(0, "SET") || s.IsKeyword(0, "RESET");

    private static string LineAt(string text, int line)
    {
        var start = 0;
        for (var i = 1; i < line && start >= 0; i++)
        {
            start = text.IndexOf('\n', start);
            if (start >= 0) start++;
        }
        if (start < 0) return "";
        var end = text.IndexOf('\n', start);
        return (end < 0 ? text[start..] : text[start..end]).TrimEnd('\r');
    }
}
