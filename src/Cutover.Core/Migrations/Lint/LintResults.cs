namespace Cutover.Migrations.Lint;

/// <summary>
/// One problem in a migration. <see cref="Line"/>/<see cref="Column"/> (1-based) point at the offending token;
/// <see cref="Excerpt"/> is the whole statement, which starts at <see cref="ExcerptLine"/>/<see cref="ExcerptColumn"/>.
/// <see cref="Lock"/> is the strongest table lock the statement takes ("" when none).
/// </summary>
public sealed record LintFinding(
    string File, int Line, int Column, string Rule, Severity Severity, string Message, string Lock, string SafeAlternative,
    string Excerpt, int ExcerptLine, int ExcerptColumn)
{
    /// <summary>With --verify: the strongest lock PostgreSQL actually took ("" for none); null when not verified.</summary>
    public string? VerifiedLock { get; init; }

    /// <summary>With --verify: whether PostgreSQL rewrote a table; null when not verified.</summary>
    public bool? Rewrite { get; init; }
}

/// <summary>A statement whose findings a <c>-- cutover:safety-assured reason</c> comment accepted, kept for the record.</summary>
public sealed record SafetyAssurance(string File, int Line, string Reason, string Statement);

public sealed record FileLintResult(string File, IReadOnlyList<LintFinding> Findings, IReadOnlyList<SafetyAssurance> Assured);
