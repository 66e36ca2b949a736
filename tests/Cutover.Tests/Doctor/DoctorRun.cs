using System.Text.Json;
using Cutover.Tests.Support;

namespace Cutover.Tests.Doctor;

/// <summary>`cutover doctor --json` run for real, its findings read back by check name.</summary>
public sealed record DoctorRun(CliResult Result, IReadOnlyList<(string Check, string Status, string Message, string? Fix)> Findings)
{
    public static async Task<DoctorRun> RunAsync(string dir, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var result = await CutoverCli.RunAsync(dir, environment, ["doctor", "--json", .. args]);
        using var json = JsonDocument.Parse(result.Stdout);
        var findings = json.RootElement.EnumerateArray().Select(f => (
            f.GetProperty("check").GetString()!,
            f.GetProperty("status").GetString()!,
            f.GetProperty("message").GetString()!,
            f.GetProperty("fix").GetString())).ToList();
        return new DoctorRun(result, findings);
    }

    public (string Check, string Status, string Message, string? Fix) this[string check] =>
        Findings.Single(f => f.Check == check);

    public override string ToString() => string.Join("\n", Findings.Select(f => $"{f.Status} {f.Check}: {f.Message}")) + "\n" + Result.Stderr;
}
