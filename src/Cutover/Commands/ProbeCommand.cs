using System.CommandLine;
using System.Text.Json;
using Cutover.Config;
using Cutover.Probe;

namespace Cutover.Cli.Commands;

/// <summary>`cutover probe URL`: a fixed-rate load generator to point at your own endpoint during a deploy.</summary>
public static class ProbeCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var url = new Argument<string>("url") { Description = "The endpoint to probe, e.g. http://127.0.0.1:3000/health" };
        var rate = new Option<double>("--rate") { Description = "Requests per second, sent on schedule whatever the answers", DefaultValueFactory = _ => 100 };
        var duration = new Option<string>("--duration") { Description = "How long to probe (e.g. 30s)", DefaultValueFactory = _ => "10s" };
        var connections = new Option<int>("--connections") { Description = "Keep-alive connections at most", DefaultValueFactory = _ => 16 };
        var method = new Option<string>("--method") { Description = "HTTP method", DefaultValueFactory = _ => "GET" };
        var allow = new Option<int>("--allow-failures") { Description = "Exit 0 with up to this many failed requests", DefaultValueFactory = _ => 0 };
        var reportOption = new Option<string?>("--report") { Description = "Also write the result as one self-contained .html file: requests/s, failures and latency per 100 ms, as charts" };
        var command = new Command("probe", "Send requests at a fixed rate and count every failure: refused, reset, timeout, 5xx, other status")
        {
            url, rate, duration, connections, method, allow, reportOption, common.Json,
        };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            return CommandRunner.RunAsync(env, json, async () =>
            {
                if (!Uri.TryCreate(parse.GetValue(url), UriKind.Absolute, out var target) || target.Scheme != "http")
                    throw new UsageException($"'{parse.GetValue(url)}' is not an http:// URL");
                if (!Duration.TryParse(parse.GetValue(duration)!, out var length, out var error)) throw new UsageException($"--duration: {error}");
                if (parse.GetValue(rate) is var r && r <= 0) throw new UsageException("--rate must be above 0");
                if (parse.GetValue(reportOption) is { } reportPath) Cutover.Report.HtmlReportWriter.CheckWritable(reportPath);
                var probed = await LoadProbe.RunAsync(new ProbeOptions
                {
                    Url = target,
                    Rate = parse.GetValue(rate),
                    Duration = length,
                    Connections = Math.Max(1, parse.GetValue(connections)),
                    Method = parse.GetValue(method)!.ToUpperInvariant(),
                }, ct);
                if (parse.GetValue(reportOption) is { } path)
                    Cutover.Report.HtmlReportWriter.Write(path, Cutover.Report.DeployReport.ForProbe(target, parse.GetValue(rate), probed, DateTimeOffset.UtcNow));
                Render(env, json, probed);
                return probed.Failed > parse.GetValue(allow) ? ExitCodes.Failed : ExitCodes.Ok;
            });
        });
        return command;
    }

    public static void Render(CliEnvironment env, bool json, ProbeReport report)
    {
        if (json)
        {
            env.Out.WriteLine(Json.Write(Output.ProbeSummary.Of(report), Output.CliJson.Compact));
            return;
        }
        foreach (var line in Lines(report)) env.Out.WriteLine(line);
    }

    public static IEnumerable<string> Lines(ProbeReport report)
    {
        yield return $"probe: {report.Requests} requests in {report.Seconds:0.0}s, {report.Failed} failed" +
                     (report.Failed == 0 ? "" : " (" + string.Join(", ", report.Failures.Where(f => f.Value > 0).Select(f => $"{f.Key} {f.Value}")) + ")");
        yield return $"latency: p50 {report.LatencyMs.P50:0.00} ms, p90 {report.LatencyMs.P90:0.00} ms, p99 {report.LatencyMs.P99:0.00} ms, max {report.LatencyMs.Max:0.00} ms";
        if (report.WorstWindow is { } w)
            yield return $"worst second: {w.Second}s-{w.Second + 1}s, {w.Requests} requests, {w.Failed} failed, p99 {w.P99Ms:0.00} ms";
    }
}
