using System.Diagnostics;
using Cutover.Config;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// What the agent writes to disk: agent.log by the agent itself (no line per request, rotated at its size limit,
/// `--log-retain` old files), the opt-in access log, and instance logs that keep `logs.retain` rotated files.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class AgentLogTests(ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _dir = new();
    private string Home => _dir.Home;
    private string Source => _dir.Source;

    public void Dispose() => _dir.Dispose();

    private string Config(int port, bool accessLog)
    {
        var path = _dir.Combine("node.yml");
        File.WriteAllText(path, $"""
            app: node
            strategy: rolling
            root: {_dir.Combine("root")}
            run:
              command: node server.js
              instances: 2
              ready: message
            proxy:
              listen: 127.0.0.1:{port}
            rolling:
              monitor: 200ms
            {(accessLog ? "logs:\n  access_log: true" : "")}
            """);
        return path;
    }

    private Task<CliResult> Cli(params string[] args) => _dir.Cli(args);

    private string AgentLog => Path.Combine(Home, "agent.log");
    private string AccessDir => Path.Combine(Home, "logs", "node", "access");

    [Fact]
    public async Task Agent_log_gets_no_line_per_request_and_the_access_log_is_opt_in()
    {
        var port = HealthServer.FreePort();
        AppFactory.CopyTree(Path.Combine(AppContext.BaseDirectory, "examples", "node-app"), Source);
        var deploy = await Cli("deploy", Source, "-c", Config(port, accessLog: false));
        Assert.True(deploy.ExitCode == 0, deploy.All);
        Assert.True(File.Exists(AgentLog), "the background agent wrote no agent.log");
        Assert.Contains("agent listening on", File.ReadAllText(AgentLog));

        var before = new FileInfo(AgentLog).Length;
        await using (var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 8, maxDuration: TimeSpan.FromSeconds(3)))
        {
            await Task.Delay(TimeSpan.FromSeconds(3));
            var samples = await load.StopAsync();
            output.WriteLine($"{samples.Count} requests; agent.log {before} -> {new FileInfo(AgentLog).Length} bytes");
            Assert.True(samples.Count > 500, $"only {samples.Count} requests");
            Assert.Equal(0, samples.Count(s => s.Status != 200));
        }
        Assert.Equal(before, new FileInfo(AgentLog).Length);
        Assert.False(Directory.Exists(AccessDir), "an access log was written without logs.access_log");

        // Switched on by a deploy of the changed config: one line per request in the app's access log.
        var again = await Cli("deploy", Source, "-c", Config(port, accessLog: true));
        Assert.True(again.ExitCode == 0, again.All);
        using var client = new HttpClient();
        for (var i = 0; i < 20; i++) await client.GetStringAsync($"http://127.0.0.1:{port}/hello?n={i}");
        // A line is written once its response has gone out, so the last one may land just after the client has it.
        string[] lines = [];
        await Wait.WithinAsync(() => (lines = File.ReadAllLines(Path.Combine(AccessDir, "current.log"))).Count(l => l.Contains("\"GET /hello?n=")) >= 20, TimeSpan.FromSeconds(10));
        Assert.Equal(20, lines.Count(l => l.Contains("\"GET /hello?n=")));
        Assert.Matches(@"127\.0\.0\.1 ""GET /hello\?n=19 HTTP/1\.1"" 200 [\d.]+ms$", lines.Last());
        // The redeploy may have logged a line of its own; none of the requests did.
        var logged = File.ReadAllText(AgentLog)[(int)before..];
        Assert.DoesNotContain("/hello", logged);
        Assert.True(logged.Length < 1024, logged);
    }

    [Fact]
    public async Task Agent_log_rotates_at_its_size_limit_and_keeps_only_the_retained_files()
    {
        // 120 apps in the state whose configs are gone: the agent logs one error line for each as it starts.
        Directory.CreateDirectory(Home);
        var apps = Enumerable.Range(0, 120).Select(i => $$"""{"app":"gone{{i}}","config_file":"{{_dir.Combine($"gone{i}.yml")}}","release_id":"x","release_dir":"/nonexistent","stopped":false,"instances":[]}""");
        File.WriteAllText(Path.Combine(Home, "state.json"), $$"""{"apps":[{{string.Join(",", apps)}}]}""");
        var start = _dir.StartInfo("agent", "--quiet", "--log-max-size", "2KB", "--log-retain", "2");
        using var agent = Process.Start(start)!;
        var quietOutput = agent.StandardOutput.ReadToEndAsync();
        await Wait.WithinAsync(() => File.Exists(Path.Combine(Home, "agent.pid")), TimeSpan.FromSeconds(30));
        Assert.True(File.Exists(Path.Combine(Home, "agent.pid")), "the agent did not start");

        var rotated = Directory.GetFiles(Home, "agent.*.log").Where(f => f != AgentLog).Order().ToList();
        output.WriteLine(string.Join("\n", rotated.Select(f => $"{Path.GetFileName(f)} {new FileInfo(f).Length}")));
        Assert.Equal(2, rotated.Count);
        Assert.All(rotated.Append(AgentLog), f => Assert.True(new FileInfo(f).Length <= 2048, $"{f} is {new FileInfo(f).Length} bytes"));
        // The newest lines are the ones kept: the last app's error and the start line are there, the first app's is gone.
        var kept = string.Join("\n", rotated.Append(AgentLog).Select(File.ReadAllText));
        Assert.Contains("cannot restore gone119", kept);
        Assert.Contains("agent listening on", kept);
        Assert.DoesNotContain("cannot restore gone0:", kept);

        AgentProcess.Stop(Home, 15);
        Assert.Equal("", await quietOutput); // --quiet: agent.log only
    }

    [Theory]
    [InlineData("--log-max-size", "lots", "--log-max-size:")]
    [InlineData("--log-max-size", "100", "--log-max-size must be at least 1KB")]
    [InlineData("--log-retain", "-1", "--log-retain must be 0 or more")]
    public async Task Bad_agent_log_options_are_refused_before_anything_is_touched(string option, string value, string message)
    {
        var result = await Cli("agent", option, value);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Stderr);
        Assert.Single(result.Stderr.Trim().Split('\n'));
        Assert.False(Directory.Exists(Home), "the refused agent created its home");
    }

    [Fact]
    public void Instance_logs_keep_only_the_retained_rotated_files()
    {
        var dir = _dir.Combine("logs");
        using (var sink = new LogSink(dir, maxBytes: 1024, retain: 3))
            for (var i = 0; i < 500; i++) sink.Write("app-0", 42, "out", $"line {i}");
        var rotated = Directory.GetFiles(dir, "*.log").Where(f => Path.GetFileName(f) != LogSink.CurrentName).ToList();
        Assert.Equal(3, rotated.Count);
        var recent = new LogTail(dir).Recent(10_000, null);
        Assert.EndsWith("line 499", recent[^1]);
        Assert.DoesNotContain(recent, l => l.EndsWith(" line 0"));
    }

    [Fact]
    public void The_logs_section_is_read_and_checked()
    {
        const string head = "app: a\nstrategy: rolling\nroot: /r\nrun:\n  command: x\nproxy:\n  listen: 127.0.0.1:3000\n";
        var config = ConfigLoader.Parse(head + "logs:\n  max_size: 2MB\n  retain: 2\n  access_log: true\n", "/srv/cutover.yml");
        var logs = config.SettingsOf<RollingSettings>().Logs;
        Assert.Equal(2L << 20, logs.MaxSize);
        Assert.Equal(2, logs.Retain);
        Assert.True(logs.AccessLog);
        Assert.Equal(5, ConfigLoader.Parse(head, "/srv/cutover.yml").SettingsOf<RollingSettings>().Logs.Retain);
        foreach (var (bad, message) in new[] { ("retain: -1", "must be at least 0"), ("max_size: 10", "must be at least 1KB"), ("access_log: yes", "is not one of true | false"), ("retian: 3", "retian") })
        {
            var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(head + "logs:\n  " + bad + "\n", "/srv/cutover.yml"));
            Assert.Contains(message, Assert.Single(e.Errors).ToString());
        }
        var symlink = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("app: a\nroot: /r\nlogs:\n  retain: 2\n", "/srv/cutover.yml"));
        Assert.Contains("logs: not used by strategy: symlink (used by: rolling, blue-green)", Assert.Single(symlink.Errors).ToString());
    }
}
