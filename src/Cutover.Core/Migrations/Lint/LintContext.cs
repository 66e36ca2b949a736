using Cutover.Migrations.Sql;

namespace Cutover.Migrations.Lint;

/// <summary>The statement under inspection, the file so far, and where its findings go.</summary>
internal sealed class LintContext(string file, LintOptions options, FileState state, SqlStatement statement, ParsedStatement parsed)
{
    public string File { get; } = file;
    public LintOptions Options { get; } = options;
    public FileState State { get; } = state;
    public SqlStatement Statement { get; } = statement;
    public ParsedStatement Parsed { get; } = parsed;
    public string Lock { get; } = StatementLock.Of(parsed);
    public List<LintFinding> Findings { get; } = [];

    public void Report(string rule, SqlToken at, string message, string safeAlternative)
    {
        if (Options.ExcludedRules.Contains(rule)) return;
        Findings.Add(new LintFinding(File, at.Line, at.Column, rule, RuleIds.SeverityOf(rule), message, Lock, safeAlternative,
            Statement.Text, Statement.Line, Statement.Column));
    }

    /// <summary>Steps as numbered lines; renderers indent them.</summary>
    public static string Steps(params string[] steps) =>
        string.Join('\n', steps.Select((s, i) => $"{i + 1}. {s}"));

    public string Text(IReadOnlyList<SqlToken> tokens) =>
        tokens.Count == 0 ? "" : Statement.Text.Substring(tokens[0].Offset - Statement.Offset, tokens[^1].End - tokens[0].Offset);
}

/// <summary>A check over one statement. Rules are stateless; what they need from earlier statements is in <see cref="FileState"/>.</summary>
internal interface ILintRule
{
    void Check(LintContext context);
}
