using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Integration;

/// <summary>
/// The issue's PHP claim, end to end: nginx and php-fpm serve current/public with $realpath_root, a load
/// generator keeps 16 keep-alive connections busy, and the real CLI deploys five releases and rolls back twice.
/// Not one request may fail, and every request started a second after a switch must see the new release.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Nginx)]
[Trait(Needs.Trait, Needs.Slow)]
public class NginxPhpZeroDowntimeTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Five_deploys_and_two_rollbacks_under_load_fail_no_request()
    {
        var root = _dir.Combine("root");
        var source = _dir.Combine("src");
        var config = AppFactory.WriteConfig(_dir.Path, root, "shared:\n  dirs: [storage]\n");
        using var server = new NginxPhpServer(root);
        var url = server.BaseUrl + "/index.php";

        async Task Cli(params string[] args)
        {
            var result = await CutoverCli.RunAsync(_dir.Path, [.. args, "-c", config]);
            Assert.True(result.ExitCode == 0, $"cutover {string.Join(' ', args)} exited {result.ExitCode}:\n{result.All}\n{server.Logs()}");
        }

        AppFactory.WriteHelloPhp(source, "1.0.0");
        await Cli("deploy", source);
        using (var probe = new HttpClient())
            Assert.StartsWith("hello from 1.0.0", await probe.GetStringAsync(url));

        var steps = new List<(string Version, double StartMs, double DoneMs)>();
        await using var load = new LoadGenerator(url, connections: 16, maxDuration: TimeSpan.FromMinutes(2));
        await Task.Delay(1000);
        steps.Add(("1.0.0", 0, 0));
        var plan = new (string Action, string Version)[]
        {
            ("deploy", "2.0.0"), ("deploy", "3.0.0"), ("rollback", "2.0.0"),
            ("deploy", "4.0.0"), ("deploy", "5.0.0"), ("rollback", "4.0.0"), ("deploy", "6.0.0"),
        };
        foreach (var (action, version) in plan)
        {
            var startMs = load.NowMs;
            if (action == "deploy")
            {
                AppFactory.WriteHelloPhp(source, version);
                await Cli("deploy", source, "--revision", "v" + version);
            }
            else
            {
                await Cli("rollback");
            }
            steps.Add((version, startMs, load.NowMs));
            await Task.Delay(1500);
        }
        var stopMs = load.NowMs;
        var samples = await load.StopAsync();

        var failed = samples.Where(s => s.Status != 200).ToList();
        output.WriteLine($"{samples.Count} requests over {stopMs / 1000:0.0}s, {failed.Count} failed");
        Assert.True(failed.Count == 0, $"{failed.Count} of {samples.Count} requests failed, first: {failed.FirstOrDefault()}");
        Assert.True(samples.Count > 2000, $"only {samples.Count} requests: the load was not continuous");

        for (var i = 1; i < steps.Count; i++)
        {
            var (version, _, done) = steps[i];
            var until = i + 1 < steps.Count ? steps[i + 1].StartMs : stopMs;
            var settled = samples.Where(s => s.StartMs >= done + 1000 && s.EndMs <= until).ToList();
            Assert.True(settled.Count > 50, $"step {i}: too few requests after the switch to {version} to judge");
            var stale = settled.Where(s => s.Version != version).ToList();
            Assert.True(stale.Count == 0, $"step {i}: {stale.Count} requests started a second after the switch to {version} saw {stale.FirstOrDefault().Version}");
            var firstNew = samples.FirstOrDefault(s => s.StartMs >= steps[i - 1].DoneMs && s.Version == version);
            output.WriteLine($"step {i}: {version}; first response from it {firstNew.EndMs - done:0} ms after the command returned");
        }
    }

    [Fact]
    public async Task An_unhealthy_release_is_rolled_back_by_itself_without_failing_requests()
    {
        var root = _dir.Combine("root");
        var source = _dir.Combine("src");
        using var server = new NginxPhpServer(root);
        var config = AppFactory.WriteConfig(_dir.Path, root,
            $"health:\n  url: {server.BaseUrl}/health.php\n  interval: 100ms\n  retries: 5\n  timeout: 1s\n");
        AppFactory.WriteHelloPhp(source, "1.0.0");
        var first = await CutoverCli.RunAsync(_dir.Path, "deploy", source, "-c", config);
        Assert.True(first.ExitCode == 0, first.All + server.Logs());

        await using var load = new LoadGenerator(server.BaseUrl + "/index.php", connections: 8, maxDuration: TimeSpan.FromMinutes(1));
        await Task.Delay(500);
        AppFactory.WriteHelloPhp(source, "2.0.0", unhealthy: true);
        var bad = await CutoverCli.RunAsync(_dir.Path, "deploy", source, "-c", config);
        var doneMs = load.NowMs;
        await Task.Delay(1500);
        var samples = await load.StopAsync();

        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("health check failed after 5 attempts", bad.Stderr);
        Assert.Contains("answered 503", bad.Stderr);
        Assert.Contains("switched back to", bad.Stderr);
        Assert.Equal("1.0.0", File.ReadAllText(Path.Combine(root, "current", "VERSION")).Trim());
        Assert.DoesNotContain(samples, s => s.Status != 200);
        var after = samples.Where(s => s.StartMs >= doneMs + 1000).ToList();
        Assert.NotEmpty(after);
        Assert.All(after, s => Assert.Equal("1.0.0", s.Version));
        output.WriteLine($"{samples.Count} requests, {samples.Count(s => s.Version == "2.0.0")} served by the unhealthy release before it was switched out");
    }
}
