using System.Diagnostics;
using System.Text.RegularExpressions;
using Cutover.Tests.Support;

namespace Cutover.Tests.Metrics;

/// <summary>
/// The README's "Metrics" section: its scrape config and alert rules pass Prometheus' own checker (promtool, Debian's
/// prometheus package, which test.sh installs), the alerts fire on the series they are about and not on others
/// (`promtool test rules`), and every metric they name is one the agent exports.
/// </summary>
public sealed class ReadmeMetricsSectionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static List<string> SectionBlocks()
    {
        var readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        var start = readme.IndexOf("\n## Metrics\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "the README has no \"Metrics\" section");
        var end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        var section = readme[start..(end < 0 ? readme.Length : end)];
        return Regex.Matches(section, "```ya?ml\n(.*?)```", RegexOptions.Singleline).Select(m => m.Groups[1].Value).ToList();
    }

    private async Task<(int ExitCode, string Output)> PromtoolAsync(params string[] args)
    {
        var start = new ProcessStartInfo("promtool") { WorkingDirectory = _dir.Path, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>Unit tests for the README's alerts: shop fails 10% and restarts 5 times (both fire); blog fails 1% and restarts once (neither).</summary>
    private const string AlertTests = """
        rule_files:
          - cutover-alerts.yml
        evaluation_interval: 1m
        tests:
          - interval: 1m
            input_series:
              - series: 'cutover_proxy_requests_total{app="shop",code="200"}'
                values: '0+900x20'
              - series: 'cutover_proxy_requests_total{app="shop",code="502"}'
                values: '0+100x20'
              - series: 'cutover_proxy_requests_total{app="blog",code="200"}'
                values: '0+1000x20'
              - series: 'cutover_proxy_requests_total{app="blog",code="500"}'
                values: '0+10x20'
              - series: 'cutover_instance_restarts_total{app="shop",process="worker"}'
                values: '0 1 2 3 4 5 5 5 5 5 5 5 5 5 5 5 5 5 5 5'
              - series: 'cutover_instance_restarts_total{app="blog",process="web"}'
                values: '0 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1'
            alert_rule_test:
              - eval_time: 4m
                alertname: CutoverHighErrorRate
                exp_alerts: []
              - eval_time: 12m
                alertname: CutoverHighErrorRate
                exp_alerts:
                  - exp_labels: { severity: page, app: shop }
                    exp_annotations:
                      summary: "shop: 10% of responses are 5xx"
              - eval_time: 10m
                alertname: CutoverInstanceRestarts
                exp_alerts:
                  - exp_labels: { severity: ticket, app: shop, process: worker }
                    exp_annotations:
                      summary: "shop worker: 5 restarts in 15 minutes"
        """;

    [Fact]
    public async Task The_scrape_config_and_alert_rules_pass_promtool_and_the_alerts_fire_when_they_should()
    {
        var blocks = SectionBlocks();
        Assert.Equal(2, blocks.Count);
        var scrapeConfig = blocks.Single(b => b.Contains("scrape_configs:"));
        var rules = blocks.Single(b => b.Contains("groups:"));
        File.WriteAllText(_dir.Combine("prometheus.yml"), scrapeConfig);
        File.WriteAllText(_dir.Combine("cutover-alerts.yml"), rules);
        File.WriteAllText(_dir.Combine("alert-tests.yml"), AlertTests);

        var config = await PromtoolAsync("check", "config", "prometheus.yml");
        Assert.True(config.ExitCode == 0, config.Output);
        Assert.Contains("1 rule files found", config.Output);
        var checkedRules = await PromtoolAsync("check", "rules", "cutover-alerts.yml");
        Assert.True(checkedRules.ExitCode == 0, checkedRules.Output);
        Assert.Contains("2 rules found", checkedRules.Output);
        var tested = await PromtoolAsync("test", "rules", "alert-tests.yml");
        Assert.True(tested.ExitCode == 0, tested.Output);

        // The names the rules use are the agent's own (a renamed metric would leave the alert silent forever).
        var exported = (await new Cutover.Metrics.AgentMetrics().ScrapeAsync(() => [], CancellationToken.None)) is var text
            ? Regex.Matches(System.Text.Encoding.UTF8.GetString(text), "^# TYPE (\\S+) ", RegexOptions.Multiline).Select(m => m.Groups[1].Value).ToHashSet()
            : [];
        var used = Regex.Matches(rules, "cutover_[a-z_]+").Select(m => m.Value).Distinct().ToList();
        Assert.Equal(["cutover_proxy_requests_total", "cutover_instance_restarts_total"], used);
        Assert.All(used, name => Assert.Contains(name, exported));
    }
}
