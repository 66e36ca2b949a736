using Cutover.BlueGreen;
using Cutover.Config;
using Cutover.Progress;
using Cutover.Rolling;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// `router: haproxy` against Debian's haproxy (HaproxyServer, by pid): blue-green switches and a rollback under
/// keep-alive load through HAProxy, with HAProxy's backend changed through its runtime API and never reloaded.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Haproxy)]
public class HaproxyRouterTests : IAsyncLifetime
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();
    private readonly HaproxyServer _haproxy = new();
    private AppRuntime? _app;
    private readonly WarmSetKeeper _warm = new();

    private string Release(string version, string? behavior = null) => AppFactory.NodeRelease(_dir.Path, version, behavior);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync();
        _haproxy.Dispose();
        _http.Dispose();
        _dir.Dispose();
    }

    private CutoverConfig Config(string socket, string backend = "app", string monitor = "0s") => ConfigLoader.Parse($"""
        app: routed
        strategy: blue-green
        root: {_dir.Path}
        run:
          command: node server.js
          instances: 2
          ready: message
          ready_timeout: 10s
        proxy:
          listen: 127.0.0.1:{HealthServer.FreePort()}
          drain_timeout: 5s
        blue_green:
          keep_previous: 10m
          monitor: {monitor}
          max_error_rate: 1%
        router: haproxy
        haproxy:
          socket: {socket}
          backend: {backend}
        """, _dir.Combine("cutover.yml"));

    private async Task<BlueGreenSwitch> StartAsync(string monitor = "0s")
    {
        _app = await AppRuntime.CreateAsync(Config(_haproxy.AdminSocket, monitor: monitor), _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        var bg = new BlueGreenSwitch(_app, _warm, new SilentProgress());
        Assert.Null(await bg.CheckRouterAsync(CancellationToken.None));
        Assert.Null(await _app.StartAllAsync("v1", Release("1"), CancellationToken.None));
        Assert.Null(await bg.RouteLiveSetAsync(CancellationToken.None));
        return bg;
    }

    private string[] LiveServers() => _app!.Slots.Select(s => HaproxyRouter.ServerName(s!.Endpoint!)).Order().ToArray();

    [Fact]
    public async Task Switches_and_a_rollback_under_keep_alive_load_fail_no_request_and_never_reload_haproxy()
    {
        var bg = await StartAsync();
        Assert.Equal(LiveServers(), await _haproxy.ServersAsync());

        await using var load = new LoadGenerator(_haproxy.Url, connections: 8, maxDuration: TimeSpan.FromMinutes(1));
        await Task.Delay(300);
        Assert.Null(await bg.RunAsync("v2", Release("2"), CancellationToken.None));
        // Only green is in the backend: blue's servers were drained, set maint and deleted.
        Assert.Equal(LiveServers(), await _haproxy.ServersAsync());
        await Task.Delay(300);
        // A rollback within keep_previous: the warm set goes back in, green out.
        Assert.Null(await bg.RunAsync("v1", Release("1"), CancellationToken.None));
        Assert.Equal(LiveServers(), await _haproxy.ServersAsync());
        await Task.Delay(300);
        Assert.Null(await bg.RunAsync("v3", Release("3"), CancellationToken.None));
        await Task.Delay(300);
        var samples = await load.StopAsync();

        Assert.Equal(0, samples.Count(s => s.Status != 200));
        // The load saw every release in turn, ending on the last one, over the connections HAProxy kept alive.
        Assert.Contains(samples, s => s.Version == "2");
        Assert.Equal("3", samples.OrderBy(s => s.StartMs).Last().Version);
        Assert.True(samples.Count > 100, $"{samples.Count} requests");
        // No reload and no restart: the same process, started at the same moment.
        Assert.True(_haproxy.Running);
        Assert.Equal(_haproxy.StartTime, _haproxy.ReadStartTime());
        Assert.Equal(LiveServers(), await _haproxy.ServersAsync());
    }

    [Fact]
    public async Task A_green_set_answering_500_is_switched_back_by_haproxys_own_counters()
    {
        var bg = await StartAsync(monitor: "3s");
        await using var load = new LoadGenerator(_haproxy.Url, connections: 4, maxDuration: TimeSpan.FromMinutes(1));
        await Task.Delay(200);
        var error = await bg.RunAsync("v2", Release("2", "error-500"), CancellationToken.None);
        var samples = await load.StopAsync();

        Assert.NotNull(error);
        Assert.Contains("above max_error_rate 1%", error);
        Assert.Contains("switched back to release v1", error);
        Assert.Equal("v1", _app!.ReleaseId);
        Assert.Equal(LiveServers(), await _haproxy.ServersAsync());
        // The 500s came only from green and through HAProxy, so Cutover's own proxy saw none of them: the monitor
        // tripped on HAProxy's counters, and the count it reports is theirs (read before the switch back, so at most
        // what the clients saw).
        var clientErrors = samples.Count(s => s.Status == 500);
        Assert.True(clientErrors > 0);
        var reported = System.Text.RegularExpressions.Regex.Match(error, @"green answered (\d+) failed of (\d+) requests");
        Assert.True(reported.Success, error);
        Assert.InRange(long.Parse(reported.Groups[1].Value), 1, clientErrors);
        Assert.All(samples.Where(s => s.Status == 500), s => Assert.Equal("2", s.Version));
        Assert.Equal(0, samples.Count(s => s.Status is not (200 or 500)));
        Assert.Equal(_haproxy.StartTime, _haproxy.ReadStartTime());
    }

    private CutoverConfig RollingConfig(string order) => ConfigLoader.Parse($"""
        app: rolled
        strategy: rolling
        root: {_dir.Path}
        run:
          command: node server.js
          instances: 3
          ready: message
          ready_timeout: 10s
        proxy:
          listen: 127.0.0.1:{HealthServer.FreePort()}
          drain_timeout: 5s
        rolling:
          order: {order}
          monitor: 500ms
          failure_action: rollback
        router: haproxy
        haproxy:
          socket: {_haproxy.AdminSocket}
          backend: app
        """, _dir.Combine("cutover.yml"));

    [Theory]
    [InlineData("start-first")]
    [InlineData("stop-first")]
    public async Task A_rolling_deploy_and_its_rollback_through_haproxy_fail_no_request_and_never_reload_it(string order)
    {
        _app = await AppRuntime.CreateAsync(RollingConfig(order), _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await _app.StartAllAsync("v1", Release("1"), CancellationToken.None));
        var router = HaproxyRouter.For(_app.Settings)!;
        Assert.Null(await router.RouteAsync(_app.Slots.Select(s => s!.Endpoint!).ToArray(), TimeSpan.FromSeconds(5), CancellationToken.None));

        await using var load = new LoadGenerator(_haproxy.Url, connections: 8, maxDuration: TimeSpan.FromMinutes(1));
        await Task.Delay(300);
        var deployed = await new RollingUpdate(_app, new SilentProgress()).RunAsync("v2", Release("2"), CancellationToken.None);
        Assert.True(deployed.Succeeded, deployed.Error);
        Assert.Equal(LiveServers(), await _haproxy.ServersAsync());
        await Task.Delay(300);
        // The third instance of v3 exits at once: failure_action rollback puts the replaced ones back, through HAProxy too.
        var failed = await new RollingUpdate(_app, new SilentProgress()).RunAsync("v3", Release("3", "exit-instance-2"), CancellationToken.None);
        await Task.Delay(300);
        var samples = await load.StopAsync();

        Assert.True(failed.RolledBack, failed.Error);
        Assert.All(_app.Slots, s => Assert.Equal("v2", s!.Spec.ReleaseId));
        Assert.Equal(LiveServers(), await _haproxy.ServersAsync());
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.Contains(samples, s => s.Version == "2");
        Assert.Equal("2", samples.OrderBy(s => s.StartMs).Last().Version);
        Assert.Equal(_haproxy.StartTime, _haproxy.ReadStartTime());
    }

    [Fact]
    public async Task A_missing_backend_a_static_backend_and_a_socket_not_at_admin_level_are_refused_before_anything_changes()
    {
        async Task<string?> Check(string socket, string backend)
        {
            await using var app = await AppRuntime.CreateAsync(Config(socket, backend), _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
            return await new BlueGreenSwitch(app, new WarmSetKeeper(), new SilentProgress()).CheckRouterAsync(CancellationToken.None);
        }

        Assert.Equal("haproxy has no backend 'nope' (haproxy.backend): declare `backend nope` with `balance roundrobin` in haproxy.cfg",
            await Check(_haproxy.AdminSocket, "nope"));
        Assert.Equal("haproxy backend 'fixed' balances with static-rr, to which servers cannot be added at run time: use `balance roundrobin` (or leastconn, first, random)",
            await Check(_haproxy.AdminSocket, "fixed"));
        Assert.Equal($"haproxy.socket {_haproxy.UserSocket} is at level user, not admin: add `level admin` to its `stats socket` line in haproxy.cfg",
            await Check(_haproxy.UserSocket, "app"));
        Assert.StartsWith($"haproxy.socket {_dir.Combine("none.sock")}: ", await Check(_dir.Combine("none.sock"), "app"));

        // A switch with a bad router does not start green: nothing runs from the release, HAProxy unchanged.
        var badConfig = Config(_haproxy.AdminSocket, "fixed");
        await using var badApp = await AppRuntime.CreateAsync(badConfig, _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await badApp.StartAllAsync("v1", Release("1"), CancellationToken.None));
        var error = await new BlueGreenSwitch(badApp, new WarmSetKeeper(), new SilentProgress()).RunAsync("v2", Release("2"), CancellationToken.None);
        Assert.StartsWith("haproxy backend 'fixed' balances with static-rr", error);
        Assert.Equal("v1", badApp.ReleaseId);
        Assert.All(badApp.Slots, s => Assert.Equal("v1", s!.Spec.ReleaseId));
        Assert.Empty(await _haproxy.ServersAsync("fixed"));
        Assert.Empty(await _haproxy.ServersAsync("app"));
    }
}
