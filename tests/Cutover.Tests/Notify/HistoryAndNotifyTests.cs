using System.Diagnostics;
using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Notify;

/// <summary>
/// `cutover history` and `notify:` on a symlink root through the real CLI: a deploy, a failed one, one rolled back by
/// its own after_switch check, another, and `cutover rollback`, each in history with who, when, how long, outcome and
/// why, and each posted to a real webhook receiver once.
/// </summary>
public sealed class HistoryAndNotifyTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();
    private string Root => _dir.Combine("root");
    private string Source => _dir.Combine("src");

    public void Dispose() => _dir.Dispose();

    private string Config(string webhook, string extra = "") =>
        AppFactory.WriteConfig(_dir.Path, Root, $"""
            hooks:
              before_switch: ["test ! -f FAIL_BEFORE"]
              after_switch: ["test ! -f FAIL_AFTER"]
            notify:
              webhook: {webhook}
            {extra}
            """, app: "histapp");

    private void WriteSource(string version, string? failure = null)
    {
        if (Directory.Exists(Source)) Directory.Delete(Source, recursive: true);
        Directory.CreateDirectory(Source);
        File.WriteAllText(Path.Combine(Source, "VERSION"), version);
        if (failure is not null) File.WriteAllText(Path.Combine(Source, failure), "");
    }

    private async Task<CliResult> Cli(params string[] args)
    {
        var clock = Stopwatch.StartNew();
        var result = await CutoverCli.RunAsync(_dir.Path, args);
        output.WriteLine($"$ cutover {string.Join(' ', args)}  ({clock.Elapsed.TotalSeconds:0.00}s, exit {result.ExitCode})\n{result.Stdout}{result.Stderr}");
        return result;
    }

    [Fact]
    public async Task Every_deploy_and_rollback_is_in_history_newest_first_and_posted_once_to_the_webhook_with_its_fields()
    {
        using var receiver = new WebhookReceiver();
        const string secret = "XSECRETX";
        Config(receiver.Url(secret), "  timeout: 3s\n");

        WriteSource("1");
        Assert.Equal(0, (await Cli("deploy", Source, "--revision", "rev1")).ExitCode);
        WriteSource("2", "FAIL_BEFORE");
        var failed = await Cli("deploy", Source, "--revision", "rev2");
        Assert.Equal(1, failed.ExitCode);
        WriteSource("3", "FAIL_AFTER");
        var rolledBack = await Cli("deploy", Source, "--revision", "rev3");
        Assert.Equal(1, rolledBack.ExitCode);
        WriteSource("4");
        Assert.Equal(0, (await Cli("deploy", Source, "--revision", "rev4")).ExitCode);
        var rollback = await Cli("rollback");
        Assert.Equal(0, rollback.ExitCode);

        // Read-only, so all at once.
        var reads = await Task.WhenAll(Cli("history", "--json"), Cli("history", "--json", "--limit", "2"), Cli("history", "-n", "3"), Cli("history", "--limit", "0"), Cli("config"));
        var (json, limited, text, zero, config) = (reads[0], reads[1], reads[2], reads[3], reads[4]);
        Assert.Equal(0, json.ExitCode);
        var lines = JsonDocument.Parse(json.Stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(["rollback", "deploy", "deploy", "deploy", "deploy"], lines.Select(l => l.GetProperty("action").GetString()));
        Assert.Equal(["success", "success", "rolled_back", "failed", "success"], lines.Select(l => l.GetProperty("outcome").GetString()));
        Assert.Equal(["rev1", "rev4", "rev3", "rev2", "rev1"], lines.Select(l => l.GetProperty("revision").GetString()));
        var (release1, release4) = (lines[4].GetProperty("release").GetString(), lines[1].GetProperty("release").GetString());
        Assert.Equal(release1, lines[0].GetProperty("release").GetString());
        Assert.Equal(release4, lines[0].GetProperty("from").GetString());
        Assert.Contains("before_switch", lines[3].GetProperty("reason").GetString());
        Assert.Contains("after_switch", lines[2].GetProperty("reason").GetString());
        Assert.Equal(JsonValueKind.Null, lines[1].GetProperty("reason").ValueKind);
        foreach (var line in lines)
        {
            Assert.Equal(Environment.UserName, line.GetProperty("user").GetString());
            var (started, finished) = (line.GetProperty("started").GetDateTimeOffset(), line.GetProperty("finished").GetDateTimeOffset());
            Assert.True(finished >= started);
            Assert.Equal(Math.Round((finished - started).TotalSeconds, 3), line.GetProperty("seconds").GetDouble(), 3);
            Assert.Equal(JsonValueKind.Null, line.GetProperty("fleet_deploy").ValueKind);
        }
        // Newest first by when each finished.
        Assert.True(lines.Zip(lines.Skip(1)).All(p => p.First.GetProperty("finished").GetDateTimeOffset() >= p.Second.GetProperty("finished").GetDateTimeOffset()));

        Assert.Equal(2, JsonDocument.Parse(limited.Stdout).RootElement.GetArrayLength());
        Assert.Equal(0, text.ExitCode);
        var rows = text.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, rows.Length); // the header and three lines
        Assert.Contains("rollback", rows[1]);
        Assert.Contains("rolled_back", rows[3]);
        Assert.Equal(2, zero.ExitCode);

        // One notification per event, with its fields; the secret part of the URL never printed.
        Assert.Equal(5, receiver.Received.Count);
        Assert.All(receiver.Received, r => Assert.EndsWith(secret, r.Path));
        var deployed = receiver.Of("deployed");
        Assert.Equal(["rev1", "rev4"], deployed.Select(d => d.GetProperty("revision").GetString()));
        Assert.Equal(release4, deployed[1].GetProperty("release").GetString());
        var failure = Assert.Single(receiver.Of("failed"));
        Assert.Equal("failed", failure.GetProperty("outcome").GetString());
        Assert.Contains("before_switch", failure.GetProperty("reason").GetString());
        var rolled = receiver.Of("rolled_back");
        Assert.Equal(["rolled_back", "success"], rolled.Select(r => r.GetProperty("outcome").GetString()));
        Assert.Equal(["rev3", "rev1"], rolled.Select(r => r.GetProperty("revision").GetString()));
        foreach (var body in receiver.Received.Select(r => r.Body))
        {
            Assert.Equal("histapp", body.GetProperty("app").GetString());
            Assert.Equal(Environment.UserName, body.GetProperty("who").GetString());
            Assert.True(body.GetProperty("duration").GetDouble() >= 0);
            var message = body.GetProperty("text").GetString()!;
            Assert.Contains("histapp", message);
            Assert.Contains(body.GetProperty("release").GetString()!, message);
        }
        Assert.Contains("after_switch", rolled[0].GetProperty("text").GetString());
        Assert.DoesNotContain(secret, failed.All + rolledBack.All + rollback.All + config.All);
    }

    [Fact]
    public async Task A_webhook_that_hangs_delays_the_deploy_by_its_timeout_only_and_a_dead_one_is_a_warning_that_hides_the_url()
    {
        using var hanging = new WebhookReceiver(hang: true);
        const string secret = "HANGSECRET";
        Config(hanging.Url(secret), "  timeout: 1s\n");
        WriteSource("1");
        var clock = Stopwatch.StartNew();
        var deploy = await Cli("deploy", Source);
        clock.Stop();
        Assert.Equal(0, deploy.ExitCode);
        // The hang is 30 s; the notification may take its 1 s, never the hang.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the deploy took {clock.Elapsed.TotalSeconds:0.0}s behind a webhook that hangs");
        Assert.Single(hanging.Received);
        Assert.Contains($"warning: notify: the deployed notification to http://127.0.0.1:{hanging.Port}/*** was not delivered (no answer within 1s)", deploy.All);
        Assert.DoesNotContain(secret, deploy.All);

        // A webhook where nothing listens: refused at once, tried again, then a warning; the deploy stands.
        var closed = HealthServer.FreePort();
        Config($"http://127.0.0.1:{closed}/hooks/{secret}");
        WriteSource("2");
        var second = await Cli("deploy", Source, "--json");
        Assert.Equal(0, second.ExitCode);
        var events = second.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Contains(events, e => e.GetProperty("event").GetString() == "warning" && e.GetProperty("message").GetString()!.Contains("notify: the deployed notification"));
        Assert.Equal("result", events[^1].GetProperty("event").GetString()); // the warning comes before the result line
        Assert.DoesNotContain(secret, second.All);
    }
}
