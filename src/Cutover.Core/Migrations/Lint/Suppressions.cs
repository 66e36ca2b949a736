using Cutover.Migrations.Sql;

namespace Cutover.Migrations.Lint;

/// <summary>
/// The <c>-- cutover:ignore rule, rule</c> and <c>-- cutover:safety-assured reason</c> comments directly above a
/// statement: the comment block that ends on the line before it (or on its own line).
/// </summary>
internal sealed record Suppressions(IReadOnlySet<string> Ignored, string? SafetyReason, SqlComment? SafetyComment)
{
    private const string IgnorePrefix = "cutover:ignore";
    private const string SafetyPrefix = "cutover:safety-assured";
    private static readonly Suppressions None = new(new HashSet<string>(), null, null);

    public static Suppressions For(SqlStatement statement)
    {
        if (statement.LeadingComments.Count == 0) return None;
        HashSet<string>? ignored = null;
        string? reason = null;
        SqlComment? safety = null;
        var expectedEnd = statement.Line - 1;
        for (var i = statement.LeadingComments.Count - 1; i >= 0; i--)
        {
            var comment = statement.LeadingComments[i];
            if (comment.EndLine != expectedEnd && comment.EndLine != statement.Line) break;
            expectedEnd = comment.Line - 1;
            var body = Body(comment.Text);
            if (body.StartsWith(IgnorePrefix, StringComparison.OrdinalIgnoreCase))
            {
                ignored ??= new HashSet<string>(StringComparer.Ordinal);
                foreach (var rule in body[IgnorePrefix.Length..].Split([',', ' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
                    ignored.Add(rule.ToLowerInvariant());
            }
            else if (body.StartsWith(SafetyPrefix, StringComparison.OrdinalIgnoreCase))
            {
                reason = body[SafetyPrefix.Length..].Trim().TrimStart(':').Trim();
                safety = comment;
            }
        }
        return ignored is null && safety is null ? None : new Suppressions((IReadOnlySet<string>?)ignored ?? None.Ignored, reason, safety);
    }

    private static string Body(string comment)
    {
        var text = comment.StartsWith("--", StringComparison.Ordinal) ? comment[2..] : comment[2..^2];
        return text.Trim();
    }
}
