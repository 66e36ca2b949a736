using Cutover.Migrations.Lint;

namespace Cutover.Migrations.Verify;

/// <summary>
/// Lint findings corrected by what PostgreSQL did: the lock becomes the one observed, a type change or default
/// that did not rewrite the table stops being a finding (the linters' best-known false positives), and a
/// rewrite no rule predicted becomes one.
/// </summary>
public static class VerifiedLint
{
    public const string TableRewrite = "table-rewrite";
    public const string VerifyError = "verify-error";

    /// <summary>Rules whose whole concern is a table rewrite: no rewrite observed, no finding.</summary>
    private static readonly HashSet<string> RewriteRules = [RuleIds.ChangingColumnType, RuleIds.AddingFieldWithDefault];

    public static IReadOnlyList<FileLintResult> Apply(IReadOnlyList<FileLintResult> results, IReadOnlyList<StatementFacts> facts)
    {
        var byStatement = facts.ToDictionary(f => (f.File, f.Line, f.Column));
        var output = new List<FileLintResult>();
        foreach (var result in results)
        {
            var name = Path.GetFileName(result.File);
            var findings = new List<LintFinding>();
            foreach (var finding in result.Findings)
            {
                if (!byStatement.TryGetValue((name, finding.ExcerptLine, finding.ExcerptColumn), out var fact) || fact.Error is not null)
                {
                    findings.Add(finding);
                    continue;
                }
                if (RewriteRules.Contains(finding.Rule) && fact.Rewrites.Count == 0 && fact.Note is null) continue;
                findings.Add(finding with
                {
                    Lock = fact.StrongestLock ?? finding.Lock,
                    Message = $"{finding.Message} Verified: {Describe(fact)}.",
                    VerifiedLock = fact.StrongestLock ?? "",
                    Rewrite = fact.Rewrites.Count > 0,
                });
            }
            foreach (var fact in facts.Where(f => f.File == name))
            {
                var flagged = result.Findings.Any(f => f.ExcerptLine == fact.Line && f.ExcerptColumn == fact.Column);
                var excerpt = result.Findings.FirstOrDefault(f => f.ExcerptLine == fact.Line)?.Excerpt ?? "";
                if (fact.Error is not null)
                    findings.Add(new LintFinding(result.File, fact.Line, fact.Column, VerifyError, Severity.Error,
                        $"PostgreSQL refused this statement on the verify database: {fact.Error}", "",
                        "1. check the statement against the schema it will meet; 2. verify against a copy of the production schema", excerpt, fact.Line, fact.Column));
                else if (fact.Rewrites.Count > 0 && !flagged)
                    findings.Add(new LintFinding(result.File, fact.Line, fact.Column, TableRewrite, Severity.Error,
                        $"Verified: this statement rewrites {string.Join(", ", fact.Rewrites.Select(r => $"{r.Table} ({r.Reason})"))} while holding {fact.StrongestLock ?? "its lock"}; reads and writes wait for the whole rewrite.",
                        fact.StrongestLock ?? "",
                        "1. add a new column without the rewriting change; 2. backfill it in batches; 3. switch reads and writes to it in a deploy; 4. drop the old column in a later deploy",
                        excerpt, fact.Line, fact.Column) { VerifiedLock = fact.StrongestLock ?? "", Rewrite = true });
            }
            output.Add(result with { Findings = findings.OrderBy(f => f.Line).ThenBy(f => f.Column).ToList() });
        }
        return output;
    }

    private static string Describe(StatementFacts fact)
    {
        var locks = fact.Locks.Count == 0 ? "no lock on an existing table" : string.Join(", ", fact.Locks.Select(l => $"{l.Mode} on {l.Relation}"));
        var rewrite = fact.Rewrites.Count == 0 ? "no rewrite" : "rewrites " + string.Join(", ", fact.Rewrites.Select(r => $"{r.Table} ({r.Reason})"));
        return $"{locks}; {rewrite}" + (fact.Note is null ? "" : $" ({fact.Note})");
    }
}
