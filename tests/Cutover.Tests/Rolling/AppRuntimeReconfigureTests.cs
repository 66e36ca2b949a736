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
}
