using Cutover.Agent;
using Cutover.Cli.Output.Top;
using Cutover.Progress;
using Spectre.Console;

namespace Cutover.Tests.Cli;

/// <summary>
/// The parts of `cutover top` that are arithmetic and state, on text as Prometheus clients write it: the exposition
/// reader, the 10-second window (counter increases with resets, rates, histogram_quantile), the keys, the deploy
/// phase the agent reports, and the plain snapshot. The live screen against a real agent is TopCommandTests.
/// </summary>
public class TopViewTests
{
    /// <summary>The example of the Prometheus documentation's "Text-based format" section, whole.</summary>
    private const string DocumentationExample = """
        # HELP http_requests_total The total number of HTTP requests.
        # TYPE http_requests_total counter
        http_requests_total{method="post",code="200"} 1027 1395066363000
        http_requests_total{method="post",code="400"}    3 1395066363000

        # Escaping in label values:
        msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1.458255915e9

        # Minimalistic line:
        metric_without_timestamp_and_labels 12.47

        # A weird metric from before the epoch:
        something_weird{problem="division by zero"} +Inf -3982045

        # A histogram, which has a pretty complex representation in the text format:
        # HELP http_request_duration_seconds A histogram of the request duration.
        # TYPE http_request_duration_seconds histogram
        http_request_duration_seconds_bucket{le="0.05"} 24054
        http_request_duration_seconds_bucket{le="0.1"} 33444
        http_request_duration_seconds_bucket{le="0.2"} 100392
        http_request_duration_seconds_bucket{le="0.5"} 129389
        http_request_duration_seconds_bucket{le="1"} 133988
        http_request_duration_seconds_bucket{le="+Inf"} 144320
        http_request_duration_seconds_sum 53423
        http_request_duration_seconds_count 144320

        # Finally a summary, which has a complex representation, too:
        # HELP rpc_duration_seconds A summary of the RPC duration in seconds.
        # TYPE rpc_duration_seconds summary
        rpc_duration_seconds{quantile="0.01"} 3102
        rpc_duration_seconds{quantile="0.05"} 3272
        rpc_duration_seconds{quantile="0.5"} 4773
        rpc_duration_seconds{quantile="0.9"} 9001
        rpc_duration_seconds{quantile="0.99"} 76656
        rpc_duration_seconds_sum 1.7560473e+07
        rpc_duration_seconds_count 2693
        """;

    [Fact]
    public void The_documentation_example_reads_with_escapes_timestamps_and_infinities()
    {
        var samples = PrometheusTextReader.Parse(DocumentationExample);

        Assert.Equal(2 + 1 + 1 + 1 + 8 + 7, samples.Count);
        Assert.Equal(1027, samples.Single(s => s.Name == "http_requests_total" && s.Label("code") == "200").Value);
        Assert.Equal(3, samples.Single(s => s.Name == "http_requests_total" && s.Label("code") == "400").Value);
        var escaped = samples.Single(s => s.Name == "msdos_file_access_time_seconds");
        Assert.Equal(@"C:\DIR\FILE.TXT", escaped.Label("path"));
        Assert.Equal("Cannot find file:\n\"FILE.TXT\"", escaped.Label("error"));
        Assert.Equal(1.458255915e9, escaped.Value);
        Assert.Equal(12.47, samples.Single(s => s.Name == "metric_without_timestamp_and_labels").Value);
        Assert.Equal(double.PositiveInfinity, samples.Single(s => s.Name == "something_weird").Value);
        Assert.Equal(144320, samples.Single(s => s.Name == "http_request_duration_seconds_bucket" && s.Label("le") == "+Inf").Value);
        Assert.Equal(1.7560473e+07, samples.Single(s => s.Name == "rpc_duration_seconds_sum").Value);
    }

    /// <summary>What the Java simpleclient writes (a comma before the brace) and prometheus-net (NaN, # EOF of OpenMetrics).</summary>
    [Fact]
    public void Other_clients_spellings_read_too()
    {
        var samples = PrometheusTextReader.Parse("""
            # HELP jvm_threads_current Current thread count of a JVM
            # TYPE jvm_threads_current gauge
            jvm_threads_current 21.0
            http_requests_total{method="post",code="200",} 1027.0 1395066363000
            dotnet_gc_pause_ratio NaN
            process_start_time_seconds	1.7e9
            # EOF
            """.Replace("\n", "\r\n"));

        Assert.Equal(["jvm_threads_current", "http_requests_total", "dotnet_gc_pause_ratio", "process_start_time_seconds"], samples.Select(s => s.Name));
        Assert.Equal("200", samples[1].Label("code"));
        Assert.True(double.IsNaN(samples[2].Value));
        Assert.Equal(1.7e9, samples[3].Value);
        // Label order does not make another series.
        Assert.Equal(PrometheusTextReader.Parse("""a{x="1",y="2"} 1""")[0].Series, PrometheusTextReader.Parse("""a{y="2",x="1"} 1""")[0].Series);
    }

    [Theory]
    [InlineData("cutover_proxy_requests_total{app=\"shop\"}", "a value was expected")]
    [InlineData("cutover_proxy_requests_total{app=shop} 1", "label app has no quoted value")]
    [InlineData("cutover_proxy_requests_total{app=\"shop\" code=\"200\"} 1", "',' or '}' was expected")]
    [InlineData("cutover_proxy_requests_total{app=\"shop\",app=\"x\"} 1", "label app appears twice")]
    [InlineData("cutover_proxy_requests_total 1 2 3", "more than a value and a timestamp")]
    [InlineData("cutover_proxy_requests_total many", "'many' is not a number")]
    [InlineData("cutover-proxy 1", "a value was expected")]
    [InlineData("{app=\"shop\"} 1", "no metric name")]
    public void A_line_that_is_not_a_sample_is_an_error_naming_its_number(string line, string why)
    {
        var error = Assert.Throws<FormatException>(() => PrometheusTextReader.Parse("# TYPE x counter\n" + line + "\n"));

        Assert.StartsWith("metrics line 2: " + why, error.Message);
    }

    /// <summary>Worked out by hand from promql/quantile.go's bucketQuantile on the documentation's histogram.</summary>
    [Fact]
    public void Quantiles_interpolate_inside_the_bucket_as_histogram_quantile_does()
    {
        var buckets = PrometheusTextReader.Parse(DocumentationExample).Where(s => s.Name == "http_request_duration_seconds_bucket")
            .Select(s => (PrometheusTextReader.TryParseValue(s.Label("le")!, out var le) ? le : double.NaN, s.Value)).ToList();

        // rank 72160 lies in (0.1, 0.2], which holds 100392 - 33444 of them.
        Assert.Equal(0.1 + 0.1 * ((72160 - 33444) / (100392.0 - 33444)), MetricWindow.BucketQuantile(0.5, buckets), 12);
        // rank 142876.8 is past the last finite bucket: its upper bound is the answer.
        Assert.Equal(1, MetricWindow.BucketQuantile(0.99, buckets));
        // rank 14432 in the first bucket: from 0.
        Assert.Equal(0.05 * (14432 / 24054.0), MetricWindow.BucketQuantile(0.1, buckets), 12);
        Assert.True(double.IsNaN(MetricWindow.BucketQuantile(0.99, [(0.1, 0), (double.PositiveInfinity, 0)])));
        Assert.True(double.IsNaN(MetricWindow.BucketQuantile(0.99, [(0.1, 5), (1, 5)])), "no +Inf bucket");
    }

    /// <summary>Three scrapes of an agent, a second apart, as the metrics endpoint writes them.</summary>
    private static string Scrape(int ok, int failed, int fast, int slow, double cpu, bool restarted = false) => $"""
        # TYPE cutover_proxy_requests_total counter
        cutover_proxy_requests_total{"{"}app="shop",code="200"{"}"} {ok}
        {(failed > 0 ? $"cutover_proxy_requests_total{{app=\"shop\",code=\"502\"}} {failed}" : "")}
        cutover_proxy_requests_total{"{"}app="blog",code="200"{"}"} 7
        # TYPE cutover_proxy_request_duration_seconds histogram
        cutover_proxy_request_duration_seconds_bucket{"{"}app="shop",le="0.005"{"}"} {fast}
        cutover_proxy_request_duration_seconds_bucket{"{"}app="shop",le="0.05"{"}"} {fast}
        cutover_proxy_request_duration_seconds_bucket{"{"}app="shop",le="0.5"{"}"} {fast + slow}
        cutover_proxy_request_duration_seconds_bucket{"{"}app="shop",le="+Inf"{"}"} {fast + slow}
        cutover_proxy_request_duration_seconds_sum{"{"}app="shop"{"}"} 1
        cutover_proxy_request_duration_seconds_count{"{"}app="shop"{"}"} {fast + slow}
        # TYPE cutover_instance_cpu_seconds_total counter
        cutover_instance_cpu_seconds_total{"{"}app="shop",process="web",instance="{(restarted ? "shop-1" : "shop-0")}"{"}"} {cpu}
        """;

    [Fact]
    public void The_window_gives_rates_error_share_and_p99_from_counter_increases()
    {
        var window = new MetricWindow(TimeSpan.FromSeconds(10));
        var t0 = DateTimeOffset.Parse("2026-11-30T10:00:00Z");
        bool Shop(MetricSample s) => s.Label("app") == "shop";

        window.Add(t0, PrometheusTextReader.Parse(Scrape(ok: 1000, failed: 0, fast: 1000, slow: 0, cpu: 5)));
        Assert.Null(window.Rate("cutover_proxy_requests_total", Shop));
        window.Add(t0.AddSeconds(1), PrometheusTextReader.Parse(Scrape(ok: 1090, failed: 0, fast: 1090, slow: 0, cpu: 5.25)));
        // The first 502 series appears in the third scrape: its 10 count from 0.
        window.Add(t0.AddSeconds(2), PrometheusTextReader.Parse(Scrape(ok: 1190, failed: 10, fast: 1100, slow: 100, cpu: 5.5)));

        Assert.Equal(TimeSpan.FromSeconds(2), window.Covered);
        Assert.Equal(200 / 2.0, window.Rate("cutover_proxy_requests_total", Shop));
        Assert.Equal(0.0, window.Rate("cutover_proxy_requests_total", s => s.Label("app") == "blog"));
        Assert.Equal(10.0, window.Increases("cutover_proxy_requests_total", s => Shop(s) && s.Label("code") == "502").Single().Increase);
        Assert.Equal(25.0, window.Rate("cutover_instance_cpu_seconds_total", Shop)!.Value * 100, 9);
        // 200 timed: 100 under 5 ms, 100 in (0.05, 0.5]; rank 198 is 98 into the second group.
        Assert.Equal(0.05 + 0.45 * (98 / 100.0), window.Quantile(0.99, "cutover_proxy_request_duration_seconds", Shop)!.Value, 12);
    }

    [Fact]
    public void A_counter_that_drops_was_reset_and_the_window_keeps_only_its_span()
    {
        var window = new MetricWindow(TimeSpan.FromSeconds(10));
        var t0 = DateTimeOffset.Parse("2026-11-30T10:00:00Z");
        bool Shop(MetricSample s) => s.Label("app") == "shop";
        window.Add(t0, PrometheusTextReader.Parse(Scrape(ok: 5000, failed: 0, fast: 5000, slow: 0, cpu: 9)));
        // The agent restarted: counters start again (30 since), and the instance is a new series.
        window.Add(t0.AddSeconds(1), PrometheusTextReader.Parse(Scrape(ok: 30, failed: 0, fast: 30, slow: 0, cpu: 0.5, restarted: true)));

        Assert.Equal(30.0, window.Rate("cutover_proxy_requests_total", Shop));
        Assert.Equal(0.5, window.Increases("cutover_instance_cpu_seconds_total", s => s.Label("instance") == "shop-1").Single().Increase);
        Assert.Equal(0.0, window.Increases("cutover_instance_cpu_seconds_total", s => s.Label("instance") == "shop-0").Single().Increase);

        for (var i = 2; i <= 30; i++)
            window.Add(t0.AddSeconds(i), PrometheusTextReader.Parse(Scrape(ok: 30 + 10 * (i - 1), failed: 0, fast: 30 + 10 * (i - 1), slow: 0, cpu: 1)));
        Assert.Equal(TimeSpan.FromSeconds(10), window.Covered);
        Assert.Equal(10.0, window.Rate("cutover_proxy_requests_total", Shop));
        // Every request under 5 ms: p99 interpolates inside the first bucket.
        Assert.Equal(0.005 * 0.99, window.Quantile(0.99, "cutover_proxy_request_duration_seconds", Shop)!.Value, 12);
        Assert.Null(window.Quantile(0.99, "cutover_proxy_request_duration_seconds", s => s.Label("app") == "blog"));

        // Scrapes 1.1 s apart (a refresh takes its time): the window still covers no more than its 10 s.
        var slow = new MetricWindow(TimeSpan.FromSeconds(10));
        for (var i = 0; i <= 11; i++) slow.Add(t0.AddMilliseconds(1100 * i), PrometheusTextReader.Parse(Scrape(ok: i, failed: 0, fast: i, slow: 0, cpu: 1)));
        Assert.Equal(TimeSpan.FromMilliseconds(9900), slow.Covered);
    }

    [Fact]
    public void Keys_move_the_selection_open_the_logs_and_q_goes_back_before_it_quits()
    {
        string[] rows = ["/shop", "/blog", "/api"];
        static ConsoleKeyInfo Key(ConsoleKey key, char c = '\0') => new(c, key, false, false, false);
        var screen = new TopScreen(null, false);

        screen = TopKeys.Apply(screen, TopKeys.Of(Key(ConsoleKey.DownArrow)), rows);
        Assert.Equal("/blog", screen.Selected);
        screen = TopKeys.Apply(screen, TopKeys.Of(Key(ConsoleKey.DownArrow)), rows);
        screen = TopKeys.Apply(screen, TopKeys.Of(Key(ConsoleKey.DownArrow)), rows);
        Assert.Equal("/api", screen.Selected);
        screen = TopKeys.Apply(screen, TopKeys.Of(Key(ConsoleKey.UpArrow)), rows);
        Assert.Equal("/blog", screen.Selected);
        screen = TopKeys.Apply(screen, TopKeys.Of(Key(ConsoleKey.L, 'l')), rows);
        Assert.True(screen.Logs);
        // In the logs the rows may change under it; the logs stay the app's, arrows do nothing, q goes back.
        screen = TopKeys.Apply(screen, TopKeys.Of(Key(ConsoleKey.UpArrow)), ["/shop"]);
        Assert.Equal(new TopScreen("/blog", true), screen);
        screen = TopKeys.Apply(screen, TopKeys.Of(Key(ConsoleKey.Q, 'q')), rows);
        Assert.Equal(new TopScreen("/blog", false), screen);
        screen = TopKeys.Apply(screen, TopKeys.Of(Key(ConsoleKey.Escape, '\u001b')), rows);
        Assert.False(screen.Done);
        // The selected app went away: the first row is selected.
        Assert.Equal("/shop", TopKeys.Apply(screen, TopKey.None, ["/shop", "/api"]).Selected);
        Assert.True(TopKeys.Apply(screen, TopKeys.Of(Key(ConsoleKey.Q, 'Q')), rows).Done);
    }

    [Fact]
    public void An_activation_reports_its_phase_and_batch_and_passes_every_event_on()
    {
        var written = new StringWriter();
        var phase = new ActivationPhase(new JsonProgress(written), "r2", "deploy");
        Assert.Equal(("r2", "deploy", (string?)null, (string?)null), (phase.View.Release, phase.View.Kind, phase.View.Phase, phase.View.Batch));

        phase.PhaseStarted("batch 2/3");
        Assert.Equal(("rolling", "2/3"), (phase.View.Phase, phase.View.Batch));
        phase.PhaseStarted("worker batch 1/1");
        Assert.Equal(("rolling", "worker 1/1"), (phase.View.Phase, phase.View.Batch));
        phase.PhaseStarted("green");
        Assert.Equal(("green", (string?)null), (phase.View.Phase, phase.View.Batch));
        phase.Info("shop-0 ready");
        Assert.Equal(3 + 1, written.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void The_plain_snapshot_has_every_app_and_instance_and_no_escape_codes()
    {
        var output = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(output), Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors, Interactive = InteractionSupport.No,
        });
        console.Profile.Width = 400;
        var frame = new TopFrame(DateTimeOffset.Parse("2026-11-30T10:00:00Z"), new TopAgent(42, "0.1.0"),
        [
            new AppTop("shop", "r2", "127.0.0.1:8080", 153.24, 0.012, 0.0042, 10, new DeployingView("r3", "deploy", "rolling", "2/3", DateTimeOffset.UtcNow), false, false,
            [
                new InstanceTop("shop-0", "web", "ready", "r3", 75, 12.5, 50 * 1024 * 1024, 0, null),
                new InstanceTop("shop-worker-0", "worker", "starting", "r2", null, null, 0, 2, "exited 1"),
            ]),
            new AppTop("blog", null, "127.0.0.1:8081", null, null, null, 0, null, true, false, []),
        ], true, null);

        TopRenderer.Plain(console, output, [frame], fleet: false);

        var text = output.ToString();
        Assert.DoesNotContain('\u001b', text);
        Assert.Contains("agent 0.1.0 (pid 42)", text);
        Assert.Matches(@"shop\s+r2\s+127\.0\.0\.1:8080\s+1/2 ready\s+153\.2\s+1\.2%\s+4\.2 ms\s+deploying r3: batch 2/3", text);
        Assert.Matches(@"blog\s+-\s+127\.0\.0\.1:8081\s+0/0 ready\s+-\s+-\s+-\s+maintenance", text);
        Assert.Matches(@"shop-0\s+web\s+ready\s+r3\s+1m 15s\s+12\.5%\s+50\.0 MiB\s+0", text);
        Assert.Matches(@"shop-worker-0\s+worker\s+starting \(exited 1\)\s+r2\s+-\s+-\s+0\.0 MiB\s+2", text);
    }
}
