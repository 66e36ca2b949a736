using System.Diagnostics;
using Cutover.Config;
using Cutover.Progress;
using Cutover.Rolling;
using Cutover.Supervisor;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>Builds examples/aspnet-app once, for the Kestrel rolling tests.</summary>
public sealed class AspNetAppBuild : IDisposable
{
    public AspNetAppBuild()
    {
        var start = new ProcessStartInfo("dotnet", ["build", Path.Combine(Repo.Root, "examples", "aspnet-app", "AspNetApp.csproj"), "-c", "Release", "-o", Output.Path, "-nologo", "-v", "q"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var build = Process.Start(start)!;
        var log = build.StandardOutput.ReadToEnd() + build.StandardError.ReadToEnd();
        build.WaitForExit();
        if (build.ExitCode != 0) throw new InvalidOperationException("building examples/aspnet-app failed:\n" + log);
    }

    public TempDir Output { get; } = new("cutover-aspnet-build-");

    public void Dispose() => Output.Dispose();
}

/// <summary>The same rolling deploy for an ASP.NET Core (Kestrel) app, with readiness by http, notify and tcp.</summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class AspNetRollingTests(AspNetAppBuild build, ITestOutputHelper output) : IClassFixture<AspNetAppBuild>, IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _http.Dispose();
        _dir.Dispose();
    }

    private string Release(string version)
    {
        var dir = _dir.Combine("releases", version);
        if (Directory.Exists(dir)) return dir;
        AppFactory.CopyTree(build.Output.Path, dir);
        File.WriteAllText(Path.Combine(dir, "VERSION"), version);
        return dir;
    }

    [Theory]
    [InlineData("http")]
    [InlineData("notify")]
    [InlineData("tcp")]
    public async Task Rolling_deploys_of_a_kestrel_app_fail_no_request(string ready)
    {
        var config = ConfigLoader.Parse($"""
            app: kestrel
            strategy: rolling
            root: {_dir.Path}
            run:
              command: dotnet aspnet-app.dll
              instances: 2
              ready: {ready}
              ready_timeout: 20s
              stop_signal: SIGTERM
            proxy:
              listen: 127.0.0.1:{HealthServer.FreePort()}
              drain_timeout: 10s
            health:
              path: /health
              interval: 500ms
            rolling:
              monitor: 300ms
            """, _dir.Combine("cutover.yml"));
        await using var app = await AppRuntime.CreateAsync(config, _dir.Path, _http, new object(), NullLoggerFactory.Instance, CancellationToken.None);
        Assert.Null(await app.StartAllAsync("v1", Release("1"), CancellationToken.None));

        await using var load = new LoadGenerator($"http://127.0.0.1:{app.Proxy.Listen.Port}/", connections: 8, maxDuration: TimeSpan.FromMinutes(2));
        double doneMs = 0;
        foreach (var version in new[] { "2", "3" })
        {
            var result = await new RollingUpdate(app, new SilentProgress()).RunAsync("v" + version, Release(version), CancellationToken.None);
            Assert.True(result.Succeeded, result.Error);
            doneMs = load.NowMs;
        }
        await Task.Delay(500);
        var samples = await load.StopAsync();

        output.WriteLine($"{samples.Count} requests, {samples.Count(s => s.Status != 200)} failed");
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.All(samples.Where(s => s.StartMs > doneMs), s => Assert.Equal("3", s.Version));
        Assert.All(app.Slots, s => Assert.Equal(InstanceState.Ready, s!.State));
    }
}
