using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Cutover.Migrations.Lint;

/// <summary>Renders lint results for people (Human), machines (Json), GitHub Actions annotations and editors (Gcc).</summary>
public static class LintReport
{
    public static void Write(TextWriter writer, IReadOnlyList<FileLintResult> results, LintFormat format)
    {
        switch (format)
        {
            case LintFormat.Json: WriteJson(writer, results); break;
            case LintFormat.GitHub: WriteGitHub(writer, results); break;
            case LintFormat.Gcc: WriteGcc(writer, results); break;
            default: HumanReport.Write(writer, results); break;
        }
    }

    internal static string SeverityName(Severity severity) => severity == Severity.Error ? "error" : "warning";

    private static IEnumerable<LintFinding> All(IReadOnlyList<FileLintResult> results) => results.SelectMany(r => r.Findings);

    private static void WriteJson(TextWriter writer, IReadOnlyList<FileLintResult> results)
    {
        using var buffer = new MemoryStream();
        // Utf8JsonWriter, not the reflection serializer: the CLI may be trimmed. Relaxed escaping keeps SQL readable.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartArray();
            foreach (var f in All(results))
            {
                json.WriteStartObject();
                json.WriteString("file", f.File);
                json.WriteNumber("line", f.Line);
                json.WriteNumber("column", f.Column);
                json.WriteString("rule", f.Rule);
                json.WriteString("severity", SeverityName(f.Severity));
                json.WriteString("message", f.Message);
                json.WriteString("lock", f.Lock);
                json.WriteString("safe_alternative", f.SafeAlternative);
                if (f.VerifiedLock is not null) json.WriteString("verified_lock", f.VerifiedLock);
                if (f.Rewrite is { } rewrite) json.WriteBoolean("rewrite", rewrite);
                json.WriteEndObject();
            }
            json.WriteEndArray();
        }
        writer.WriteLine(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
    }

    /// <summary>Workflow commands: https://docs.github.com/actions/reference/workflow-commands-for-github-actions</summary>
    private static void WriteGitHub(TextWriter writer, IReadOnlyList<FileLintResult> results)
    {
        foreach (var f in All(results))
            writer.WriteLine($"::{SeverityName(f.Severity)} file={Property(f.File)},line={f.Line},col={f.Column},title={Property(f.Rule)}::{Data(f.Message)}");
    }

    internal static string Data(string s) => s.Replace("%", "%25", StringComparison.Ordinal).Replace("\r", "%0D", StringComparison.Ordinal).Replace("\n", "%0A", StringComparison.Ordinal);

    internal static string Property(string s) => Data(s).Replace(":", "%3A", StringComparison.Ordinal).Replace(",", "%2C", StringComparison.Ordinal);

    private static void WriteGcc(TextWriter writer, IReadOnlyList<FileLintResult> results)
    {
        foreach (var f in All(results))
            writer.WriteLine($"{f.File}:{f.Line}:{f.Column}: {SeverityName(f.Severity)}: [{f.Rule}] {OneLine(f.Message)}");
    }

    private static string OneLine(string s) => s.Replace("\r", " ", StringComparison.Ordinal).Replace("\n", " ", StringComparison.Ordinal);
}
