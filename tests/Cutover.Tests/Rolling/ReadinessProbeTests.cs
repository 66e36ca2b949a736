using Cutover.Config;
using Cutover.Platform;
using Cutover.Supervisor;

namespace Cutover.Tests.Rolling;

/// <summary>
/// ready: http probes once the instance writes a line, not only at its poll: the line an app writes once it listens
/// ("listening on ...") is when it became ready. A real Node process; the poll is set far longer than the test waits,
/// so only the line can be what made the probe go.
/// </summary>
public sealed class ReadinessProbeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cutover-readiness-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task An_http_readiness_probe_goes_again_when_the_instance_writes_a_line()
    {
        // Listens after a pause, so the first probe (at once) finds nothing, and says so once it listens.
        const string app = "setTimeout(() => require('http').createServer((q, s) => s.end('ok')).listen(process.env.PORT, '127.0.0.1', () => console.log('listening')), 300)";
        var spec = new InstanceSpec
        {
            App = "app",
            Index = 0,
            ReleaseId = "r1",
            ReleaseDir = _dir,
            Port = LoopbackPort.Free(),
            Run = new RunConfig { Command = $"exec node -e \"{app}\"", Ready = ReadinessKind.Http, ReadyTimeout = TimeSpan.FromSeconds(60) },
            Health = new InstanceHealthConfig(),
            RuntimeDir = Path.Combine(_dir, "run"),
        };
        using var http = new HttpClient();
        var probe = new ReadinessProbe(http, poll: TimeSpan.FromSeconds(60));
        var output = new OutputSignal();
        var lines = new List<string>();
        await using var instance = InstanceProcess.Start(spec, new object(), (_, line) =>
        {
            lock (lines) lines.Add(line);
            output.Pulse();
        });

        var ready = probe.WaitReadyAsync(spec, instance, CancellationToken.None, output);

        // Far inside the 60 s poll: only the line can have sent the probe that found it ready.
        Assert.Same(ready, await Task.WhenAny(ready, Task.Delay(TimeSpan.FromSeconds(20))));
        Assert.Null(await ready);
        lock (lines) Assert.Contains("listening", lines);
        await instance.StopAsync(15, TimeSpan.FromSeconds(5));
    }
}
