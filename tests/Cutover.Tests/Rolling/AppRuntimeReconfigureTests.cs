using Cutover.Config;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// A running app takes a changed config for the instances it starts next, except what its live runtime cannot
/// change under it: the runtime itself (processes and containers are different things to supervise).
/// </summary>
public class AppRuntimeReconfigureTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _http.Dispose();
        _dir.Dispose();
    }

    private CutoverConfig Config(int port, string strategy, string runtime) => ConfigLoader.Parse($"""
        app: re
        strategy: {strategy}
        root: {_dir.Path}
        {runtime}
        run:
          {(runtime.Length == 0 ? "command: node server.js" : "instances: 1")}
        proxy:
          listen: 127.0.0.1:{port}
        """, _dir.Combine("cutover.yml"));

    [Fact]
    public async Task A_changed_runtime_is_refused_and_the_running_config_kept()
    {
        var port = HealthServer.FreePort();
        var processes = Config(port, "rolling", "");
        await using var app = await AppRuntime.CreateAsync(processes, _dir.Combine("home"), _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);

        var containers = Config(port, "rolling", "runtime: docker\ndocker: { image: re:1, port: 3000 }");
        var refused = await app.ReconfigureAsync(containers, CancellationToken.None);

        Assert.Equal("runtime changed from process to docker; run `cutover stop`, restart the agent, and deploy again", refused);
        Assert.Same(processes, app.Config);
        Assert.IsType<ProcessRuntimeConfig>(app.Settings.Runtime);
    }

    [Fact]
    public async Task A_change_of_strategy_between_the_two_that_run_instances_is_taken()
    {
        var port = HealthServer.FreePort();
        await using var app = await AppRuntime.CreateAsync(Config(port, "rolling", ""), _dir.Combine("home"), _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);

        var blueGreen = Config(port, "blue-green", "");
        Assert.Null(await app.ReconfigureAsync(blueGreen, CancellationToken.None));
        Assert.IsType<BlueGreenSettings>(app.Settings);
    }

    private CutoverConfig Parse(string text) => ConfigLoader.Parse(text, _dir.Combine("cutover.yml"));

    private string Yaml(int port, string strategy, int web, string rest) => $"""
        app: re
        strategy: {strategy}
        root: {_dir.Path}
        run:
          command: node server.js
          instances: {web}
        proxy:
          listen: 127.0.0.1:{port}
        {rest}
        """;

    [Fact]
    public async Task Changed_counts_and_types_are_taken_but_a_type_turning_singleton_is_refused_with_the_reason()
    {
        var port = HealthServer.FreePort();
        var first = Parse(Yaml(port, "rolling", 2, "processes:\n  worker:\n    command: node worker.js\n    instances: 1"));
        await using var app = await AppRuntime.CreateAsync(first, _dir.Combine("home"), _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);

        // Before issue 13 a count or a new type was refused: now it waits for ApplySizesAsync.
        Assert.Null(await app.ReconfigureAsync(Parse(Yaml(port, "rolling", 3, "processes:\n  worker:\n    command: node worker.js\n    instances: 2\n  mailer:\n    command: node worker.js")), CancellationToken.None));

        var refused = await app.ReconfigureAsync(Parse(Yaml(port, "rolling", 2, "processes:\n  worker:\n    command: node worker.js\n    singleton: true")), CancellationToken.None);
        Assert.NotNull(refused);
        Assert.StartsWith("processes.worker.singleton changed to true, which cannot change while it runs", refused);
    }

    [Fact]
    public async Task With_router_nginx_a_changed_web_count_is_refused_with_the_reason()
    {
        var port = HealthServer.FreePort();
        var nginx = $"router: nginx\nnginx:\n  upstream_file: {_dir.Combine("upstream.conf")}\n  upstream_name: app_backend\n  test: \"true\"\n  reload: \"true\"";
        await using var app = await AppRuntime.CreateAsync(Parse(Yaml(port, "blue-green", 2, nginx)), _dir.Combine("home"), _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        var refused = await app.ReconfigureAsync(Parse(Yaml(port, "blue-green", 3, nginx)), CancellationToken.None);
        Assert.Equal("web instances changed from 2 to 3, which blue_green.router: nginx cannot follow live (its upstreams are written at the switch); run `cutover stop` first", refused);
        Assert.Equal(2, app.Slots.Length);
    }
}
