namespace Cutover.Migrations.Lint;

/// <summary>
/// For a terminal: each finding with its statement, a caret under the offending token, the lock and the safe
/// way, then a summary line.
/// </summary>
internal static class HumanReport
{
    // Long statements (a CREATE TABLE of 40 columns) are cut around the finding.
    private const int ContextLines = 3;

    public static void Write(TextWriter writer, IReadOnlyList<FileLintResult> results)
    {
        int errors = 0, warnings = 0;
        foreach (var result in results)
        {
            foreach (var f in result.Findings)
            {
                if (f.Severity == Severity.Error) errors++;
                else warnings++;
                writer.WriteLine($"{f.File}:{f.Line}:{f.Column}  {LintReport.SeverityName(f.Severity)}  {f.Rule}  {f.Message}");
                Excerpt(writer, f);
                if (f.Lock.Length > 0) writer.WriteLine($"    lock: {f.Lock}");
                if (f.SafeAlternative.Length > 0)
                {
                    writer.WriteLine("    safe alternative:");
                    foreach (var step in f.SafeAlternative.Split('\n')) writer.WriteLine($"      {step}");
                }
                writer.WriteLine();
            }
            foreach (var a in result.Assured)
                writer.WriteLine($"{a.File}:{a.Line}  safety-assured  {a.Reason}");
        }
        writer.WriteLine($"{Plural(results.Count, "file")}, {Plural(errors, "error")}, {Plural(warnings, "warning")}");
    }

    private static void Excerpt(TextWriter writer, LintFinding f)
    {
        var lines = f.Excerpt.Split('\n');
        // The first line of the excerpt starts at the statement's column; pad so columns line up with the file.
        lines[0] = new string(' ', Math.Max(0, f.ExcerptColumn - 1)) + lines[0];
        var target = f.Line - f.ExcerptLine;
        if (target < 0 || target >= lines.Length) return;
        var from = Math.Max(0, target - ContextLines);
        var to = Math.Min(lines.Length - 1, target + ContextLines);
        var width = (f.ExcerptLine + to).ToString(System.Globalization.CultureInfo.InvariantCulture).Length;
        for (var i = from; i <= to; i++)
        {
            var text = lines[i].TrimEnd('\r');
            writer.WriteLine($"    {(f.ExcerptLine + i).ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(width)} | {text}");
            if (i == target)
            {
                // Keep tabs so the caret sits under the token however the terminal expands them.
                var prefix = new string(text.Take(Math.Max(0, f.Column - 1)).Select(ch => ch == '\t' ? '\t' : ' ').ToArray());
                writer.WriteLine($"    {new string(' ', width)} | {prefix}^");
            }
        }
    }

    private static string Plural(int n, string noun) => $"{n} {noun}{(n == 1 ? "" : "s")}";
}
