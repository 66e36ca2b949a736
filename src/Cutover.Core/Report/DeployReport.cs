using System.Globalization;
using Cutover.Deploy;
using Cutover.Probe;

namespace Cutover.Report;

/// <summary>How a fact in the summary reads: plain, good news (green) or bad news (red).</summary>
public enum FactTone { Plain, Good, Bad }

public sealed record ReportFact(string Label, string Value, FactTone Tone = FactTone.Plain);

/// <summary>
/// Everything the report page shows: the summary on top (the numbers the deploy prints), the probe's 100 ms buckets
/// and the deploy's timeline on their time axis. `cutover probe --report` has no deploy: an empty timeline.
/// </summary>
public sealed record DeployReport(
    string Title,
    string Subtitle,
    IReadOnlyList<ReportFact> Facts,
    IReadOnlyList<ReportFact> PhaseTimes,
    string? Error,
    ProbeReport Probe,
    DeployTimeline Timeline)
{
    public static DeployReport ForDeploy(string app, string strategy, DeployResult result, Uri probed, double rate, ProbeReport probe,
        DeployTimeline timeline, DateTimeOffset finished)
    {
        var outcome = result.Outcome.Word().Replace('_', ' ');
        var facts = new List<ReportFact>
        {
            new("Release", result.Release),
            new("Strategy", strategy),
            new("Outcome", outcome, result.Succeeded ? FactTone.Good : FactTone.Bad),
            new("Duration", Seconds(result.PhaseSeconds.Values.Sum())),
        };
        facts.AddRange(ProbeFacts(probe));
        var phases = result.PhaseSeconds.Select(p => new ReportFact(p.Key, Seconds(p.Value))).ToList();
        return new DeployReport($"Deploy of {app} release {result.Release}",
            $"{strategy} · {(result.Previous is null ? "first release" : $"previous {result.Previous}")} · probe {probed} at {Number(rate)} requests/s · {finished.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC",
            facts, phases, result.Error, probe, timeline);
    }

    public static DeployReport ForProbe(Uri probed, double rate, ProbeReport probe, DateTimeOffset finished) =>
        new($"Probe of {probed}",
            $"{Number(rate)} requests/s for {Seconds(probe.Seconds)} · {finished.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC",
            [new("Duration", Seconds(probe.Seconds)), .. ProbeFacts(probe)], [], null, probe, DeployTimeline.Empty);

    private static IEnumerable<ReportFact> ProbeFacts(ProbeReport probe)
    {
        yield return new("Requests", probe.Requests.ToString("N0", CultureInfo.InvariantCulture));
        yield return new("Failed", probe.Failed.ToString("N0", CultureInfo.InvariantCulture) +
            (probe.Failed == 0 ? "" : " (" + string.Join(", ", probe.Failures.Where(f => f.Value > 0).Select(f => $"{f.Key.Replace('_', ' ')} {f.Value}")) + ")"),
            probe.Failed == 0 ? FactTone.Good : FactTone.Bad);
        yield return new("p50", Milliseconds(probe.LatencyMs.P50));
        yield return new("p99", Milliseconds(probe.LatencyMs.P99));
        yield return new("max", Milliseconds(probe.LatencyMs.Max));
    }

    private static string Seconds(double seconds) => seconds.ToString(seconds < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + " s";

    private static string Milliseconds(double ms) => ms.ToString(ms < 10 ? "0.00" : ms < 100 ? "0.0" : "0", CultureInfo.InvariantCulture) + " ms";

    private static string Number(double value) => value.ToString("0.##", CultureInfo.InvariantCulture);
}
