using System.Text.RegularExpressions;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Report;

/// <summary>
/// `deploy --probe URL --report FILE` end to end: a real rolling deploy through the real agent (2 instances, so two
/// batches) whose new release answers every other request with 500, so the probe counts failures; the HTML is
/// checked for the markers in time order, buckets that add up to the probe's counts and nothing fetched from
/// elsewhere, then rendered by headless Chromium and the PNG decoded to see the charts. `probe --report` and the
/// report's bad input ride along on the same agent.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
[Trait(Needs.Trait, Needs.Chromium)]
public sealed partial class DeployReportTests(ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _bed = new();

    public void Dispose() => _bed.Dispose();

    [Fact]
    public async Task A_rolling_deploy_writes_a_self_contained_report_with_its_batches_on_the_probes_time_axis()
    {
        var port = HealthServer.FreePort();
        var config = _bed.WriteNodeConfig(port, "rolling", "health:\n  interval: 200ms\nrolling:\n  monitor: 200ms\n");
        _bed.WriteVersion("1");
        var first = await _bed.Cli("deploy", _bed.Source, "-c", config);
        Assert.True(first.ExitCode == 0, first.All);
        var releases = Directory.GetDirectories(Path.Combine(_bed.Root, "releases")).Length;
        var url = $"http://127.0.0.1:{port}/";

        // Bad input changes nothing: --report without --probe, and a report path that cannot be written.
        var noProbe = await _bed.Cli("deploy", _bed.Source, "-c", config, "--report", _bed.Combine("r.html"));
        Assert.True(noProbe.ExitCode == 2, noProbe.All);
        Assert.Contains("give --probe URL with it", noProbe.Stderr);
        var unwritable = await _bed.Cli("deploy", _bed.Source, "-c", config, "--probe", url, "--report", _bed.Combine("missing/r.html"));
        Assert.True(unwritable.ExitCode == 2, unwritable.All);
        Assert.Contains("--report: the directory", unwritable.Stderr);
        Assert.Equal(releases, Directory.GetDirectories(Path.Combine(_bed.Root, "releases")).Length);

        _bed.WriteVersion("2");
        File.WriteAllText(Path.Combine(_bed.Source, "BEHAVIOR"), "error-500");
        var report = _bed.Combine("deploy.html");
        var deploy = await _bed.Cli("deploy", _bed.Source, "-c", config, "--probe", url, "--probe-rate", "100", "--report", report);
        output.WriteLine(deploy.All);
        // Release 2 fails every other request it answers: the deploy goes live, the probe's failures make it exit 1.
        Assert.True(deploy.ExitCode == 1, deploy.All);
        var probed = ProbeLine().Match(deploy.Stdout);
        Assert.True(probed.Success, deploy.All);
        var (requests, failed) = (long.Parse(probed.Groups[1].Value), long.Parse(probed.Groups[2].Value));
        Assert.True(failed > 0, deploy.All);

        var html = File.ReadAllText(report);
        AssertSelfContained(html);
        // Every marker in time order, the ones this deploy must have among them in this order.
        var markers = Marker().Matches(html).Select(m => (Label: m.Groups[1].Value, Ms: double.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture))).ToList();
        Assert.True(markers.Zip(markers.Skip(1)).All(p => p.First.Ms <= p.Second.Ms), string.Join("\n", markers));
        string[] expected =
        [
            "stage", "batch 1/2 started", "batch 1/2 ready", "batch 1/2 drained", "batch 1/2 monitored",
            "batch 2/2 started", "batch 2/2 ready", "batch 2/2 drained", "batch 2/2 monitored", "switch",
        ];
        var at = expected.Select(label => markers.FindIndex(m => m.Label == label)).ToList();
        Assert.True(at.All(i => i >= 0) && at.Zip(at.Skip(1)).All(p => p.First < p.Second), string.Join("\n", markers));
        // The buckets hold every request the probe sent and every failure it counted, and the summary says the same.
        var buckets = Bucket().Matches(html).Select(m => (Requests: long.Parse(m.Groups["requests"].Value), Failed: long.Parse(m.Groups["failed"].Value))).ToList();
        Assert.Equal(requests, buckets.Sum(b => b.Requests));
        Assert.Equal(failed, buckets.Sum(b => b.Failed));
        Assert.Contains($"data-fact=\"requests\">{requests:N0}<", html);
        Assert.Contains($"data-fact=\"failed\" class=\"bad\">{failed:N0} (", html);
        Assert.Contains("data-fact=\"outcome\" class=\"good\">success<", html);
        // The markers line up with the buckets: no failure in a bucket that ended well before the first new instance
        // was ready (release 1 fails nothing), and failures in the buckets after it.
        var readyMs = markers.First(m => m.Label == "batch 1/2 ready").Ms;
        double StartMs(Match m) => double.Parse(m.Groups["ms"].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0, Bucket().Matches(html).Where(m => StartMs(m) + 100 < readyMs - 200).Sum(m => long.Parse(m.Groups["failed"].Value)));
        Assert.True(Bucket().Matches(html).Where(m => StartMs(m) > readyMs).Sum(m => long.Parse(m.Groups["failed"].Value)) > 0);

        // Rendered as a browser shows it (while `probe --report` runs, below): the charts are there, in the answered blue and the failed red.
        var rendering = HeadlessChromium.ScreenshotAsync(report, _bed.Combine("deploy.png"));

        // `cutover probe --report` alone: the same charts, no deploy markers.
        var probeReport = _bed.Combine("probe.html");
        var probe = await _bed.Cli("probe", url, "--rate", "100", "--duration", "1s", "--report", probeReport);
        Assert.True(probe.ExitCode == 1, probe.All); // release 2 still fails every other request
        var probeHtml = File.ReadAllText(probeReport);
        AssertSelfContained(probeHtml);
        Assert.Contains($"<h1>Probe of {url}</h1>", probeHtml);
        Assert.Equal(100, Bucket().Matches(probeHtml).Sum(m => long.Parse(m.Groups["requests"].Value)));
        Assert.Equal(long.Parse(ProbeLine().Match(probe.Stdout).Groups[2].Value), Bucket().Matches(probeHtml).Sum(m => long.Parse(m.Groups["failed"].Value)));
        Assert.DoesNotMatch(Marker(), probeHtml);

        var image = PngImage.Read(await rendering);
        Assert.Equal((1200, 900), (image.Width, image.Height));
        Assert.True(image.Count("#4e79a7") > 5_000, $"answered bars: {image.Count("#4e79a7")} pixels");
        Assert.True(image.Count("#d62728") > 200, $"failed bars: {image.Count("#d62728")} pixels");
        Assert.True(image.Count("#2e7d32") > 20, $"ready markers: {image.Count("#2e7d32")} pixels");
        Assert.True(image.DistinctColours() > 50, $"{image.DistinctColours()} colours");
    }

    /// <summary>Nothing the page would fetch: no script, stylesheet, font or image from a URL; url() only for data:.</summary>
    private static void AssertSelfContained(string html)
    {
        Assert.DoesNotMatch(@"(?i)\b(src|href)\s*=\s*[""']?\s*(https?:)?//", html);
        Assert.DoesNotMatch(@"(?i)<script\b", html);
        Assert.DoesNotMatch(@"(?i)<link\b", html);
        Assert.DoesNotMatch(@"(?i)@import", html);
        Assert.DoesNotMatch(@"(?i)url\(\s*(?![""']?data:)", html);
        Assert.StartsWith("<!doctype html>", html);
        Assert.Contains("<svg", html);
    }

    [GeneratedRegex(@"probe: (\d+) requests in [\d.]+s, (\d+) failed")]
    private static partial Regex ProbeLine();

    [GeneratedRegex(@"<tr data-marker=""([^""]+)"" data-ms=""(-?[\d.]+)""")]
    private static partial Regex Marker();

    [GeneratedRegex(@"<g data-ms=""(?<ms>[\d.]+)"" data-requests=""(?<requests>\d+)"" data-failed=""(?<failed>\d+)"">")]
    private static partial Regex Bucket();
}
