using Cutover.Tests.Support;

namespace Cutover.Tests.Rolling;

/// <summary>
/// `router: haproxy` through the real CLI and agent: a refused backend stops the first deploy before any instance
/// starts; a first rolling deploy puts the live set into HAProxy, the next one replaces it slot by slot.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Haproxy)]
public class HaproxyCliTests : IDisposable
{
    private readonly AgentBed _bed = new();
    private readonly HaproxyServer _haproxy = new();
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _bed.Dispose();
        _haproxy.Dispose();
        _http.Dispose();
    }

    /// <summary>Pids whose working directory is under <paramref name="root"/>, read from /proc.</summary>
    private static int[] ProcessesIn(string root) =>
        Directory.EnumerateDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0).Where(pid => pid > 0)
            .Where(pid =>
            {
                try
                {
                    return new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget is { } cwd && cwd.StartsWith(root + "/", StringComparison.Ordinal);
                }
                catch (IOException) { return false; }
                catch (UnauthorizedAccessException) { return false; }
            }).ToArray();

    // A short monitor window: the defaults (5 s per rolling batch, 30 s of blue-green) were waited out in full and
    // prove nothing here; HAProxy's counters in the window have tests of their own (HaproxyRouterTests).
    private string Config(string strategy, string backend) =>
        _bed.WriteNodeConfig(HealthServer.FreePort(), strategy, $"router: haproxy\nhaproxy:\n  socket: {_haproxy.AdminSocket}\n  backend: {backend}\n" +
                                                                 (strategy == "rolling" ? "rolling" : "blue_green") + ":\n  monitor: 200ms\n");

    [Theory]
    [InlineData("rolling")]
    [InlineData("blue-green")]
    public async Task A_static_backend_stops_the_first_deploy_before_anything_starts_and_a_good_one_is_routed_and_replaced(string strategy)
    {
        _bed.WriteVersion("1");
        var refused = await _bed.Cli("deploy", _bed.Source, "-c", Config(strategy, "fixed"));
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains("haproxy backend 'fixed' balances with static-rr, to which servers cannot be added at run time", refused.All);
        Assert.Empty(await _haproxy.ServersAsync("fixed"));
        // No instance of the release was started: no process runs in a release directory of this root.
        Assert.Empty(ProcessesIn(_bed.Root));

        var config = Config(strategy, "app");
        var first = await _bed.Cli("deploy", _bed.Source, "-c", config);
        Assert.True(first.ExitCode == 0, first.All);
        Assert.Equal(2, (await _haproxy.ServersAsync()).Length);
        Assert.StartsWith("hello from 1", await _http.GetStringAsync(_haproxy.Url));
        var before = await _haproxy.ServersAsync();

        _bed.WriteVersion("2");
        var second = await _bed.Cli("deploy", _bed.Source, "-c", config);
        Assert.True(second.ExitCode == 0, second.All);
        var after = await _haproxy.ServersAsync();
        Assert.Equal(2, after.Length);
        Assert.Empty(after.Intersect(before));
        for (var i = 0; i < 10; i++) Assert.StartsWith("hello from 2", await _http.GetStringAsync(_haproxy.Url));
        Assert.Equal(_haproxy.StartTime, _haproxy.ReadStartTime());

        // What goes around HAProxy is refused, and changes nothing: a scale of web (HAProxy would not hear of the
        // new instances) and maintenance (traffic does not pass through Cutover's proxy).
        var scale = await _bed.Cli("scale", "web=3", "-c", config);
        Assert.NotEqual(0, scale.ExitCode);
        Assert.Contains("scale of web is not available with router: haproxy", scale.All);
        var maintenance = await _bed.Cli("maintenance", "on", "-c", config);
        Assert.Equal(2, maintenance.ExitCode);
        Assert.Contains("with router: haproxy", maintenance.Stderr);
        Assert.Equal(after, await _haproxy.ServersAsync());
        Assert.StartsWith("hello from 2", await _http.GetStringAsync(_haproxy.Url));
    }
}
