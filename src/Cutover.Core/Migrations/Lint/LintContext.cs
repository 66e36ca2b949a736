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
    public static string Steps(params string[] steps)
    {
        // Written straight into the result: findings are the linter's main allocation.
        var length = 0;
        for (var i = 0; i < steps.Length; i++) length += Digits(i + 1) + 2 + steps[i].Length + (i > 0 ? 1 : 0);
        return string.Create(length, steps, static (span, steps) =>
        {
            var at = 0;
            for (var i = 0; i < steps.Length; i++)
            {
                if (i > 0) span[at++] = '\n';
                (i + 1).TryFormat(span[at..], out var written, default, System.Globalization.CultureInfo.InvariantCulture);
                at += written;
                span[at++] = '.';
                span[at++] = ' ';
                steps[i].AsSpan().CopyTo(span[at..]);
                at += steps[i].Length;
            }
        });
    }

    private static int Digits(int n) => n < 10 ? 1 : n < 100 ? 2 : 3;

    public string Text(IReadOnlyList<SqlToken> tokens) =>
        tokens.Count == 0 ? "" : Statement.Text.Substring(tokens[0].Offset - Statement.Offset, tokens[^1].End - tokens[0].Offset);
}

/// <summary>A check over one statement. Rules are stateless; what they need from earlier statements is in <see cref="FileState"/>.</summary>
internal interface ILintRule
{
    void Check(LintContext context);
}
