using System.Collections.Concurrent;
using System.Text.Json;
using Cutover.Config;
using Cutover.Platform;
using Cutover.Releases;
using Cutover.Supervisor;
using Cutover.Tests.Platform;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Win32.SafeHandles;

namespace Cutover.Tests.Rolling;

/// <summary>
/// Issue 12, step 2: a running instance passes from one owner to another (as from the old agent to the new one) with
/// its pid, its output and its exit code. Both owners are objects in this process; the pipes still travel as
/// descriptors over a socketpair with FdPassing, the description as JSON, exactly what the upgrade sends.
/// </summary>
public sealed class InstanceHandoverTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cutover-handover-").FullName;
    private readonly List<int> _groups = [];

    public void Dispose()
    {
        // Whatever a failed assertion left running: a group whose leader still runs is certainly the instance's.
        foreach (var group in _groups.Where(g => ProcStat.Read(g)?.ProcessGroup == g)) LibC.Kill(-group, 9);
        Directory.Delete(_dir, recursive: true);
    }

    private InstanceSpec Spec(string command) => new()
    {
        App = "app",
        Index = 0,
        ReleaseId = "r1",
        ReleaseDir = _dir,
        Port = 1, // only its environment variable: the command does not listen
        Run = new RunConfig { Command = command },
        Health = new InstanceHealthConfig(),
        RuntimeDir = Path.Combine(_dir, "run"),
    };

    /// <summary>The first owner hands over; the description and the pipes cross a socketpair; the second adopts.</summary>
    private static async Task<InstanceProcess> HandOverAsync(InstanceProcess first, Action<string, string> onOutput, CancellationToken cancellationToken)
    {
        var (description, stdout, stderr) = await SendAcrossAsync(await first.HandOverAsync(), cancellationToken);
        await first.DisposeAsync(); // lets go: closes its copies of the pipes, signals nothing
        return InstanceProcess.Adopt(description, stdout, stderr, onOutput);
    }

    /// <summary>What the upgrade sends for one instance, through a socketpair: the description as JSON, the pipes as descriptors.</summary>
    internal static async Task<(InstanceProcessDescription Description, SafePipeHandle Stdout, SafePipeHandle Stderr)> SendAcrossAsync(InstanceHandover handover, CancellationToken cancellationToken)
    {
        var (ours, theirs) = FdPassingTests.SocketPair();
        using (ours)
        using (theirs)
        {
            var description = JsonSerializer.SerializeToUtf8Bytes(handover.Description, Json.Compact);
            await FdPassing.SendAsync(ours, description, [(int)handover.Stdout.DangerousGetHandle(), (int)handover.Stderr.DangerousGetHandle()], cancellationToken);
            var received = await FdPassing.ReceiveAsync(theirs, cancellationToken);
            return (JsonSerializer.Deserialize<InstanceProcessDescription>(received.Payload, Json.Compact)!,
                new SafePipeHandle(received.Descriptors[0], ownsHandle: true), new SafePipeHandle(received.Descriptors[1], ownsHandle: true));
        }
    }

    private static IEnumerable<int> Ticks(IEnumerable<(string Stream, string Line)> lines, string stream) =>
        lines.Where(l => l.Stream == stream && l.Line.StartsWith("tick ", StringComparison.Ordinal)).Select(l => int.Parse(l.Line[5..]));

    [Fact]
    public async Task The_second_owner_gets_every_later_line_and_the_exit_code_and_the_first_lets_go_without_stopping_it()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var firstLines = new ConcurrentQueue<(string, string)>();
        var secondLines = new ConcurrentQueue<(string, string)>();
        var first = InstanceProcess.Start(Spec(
            "i=0; while [ ! -e stop-now ]; do i=$((i+1)); echo \"tick $i\"; echo \"tick $i\" >&2; sleep 0.02; done; echo bye; exit 3"),
            new object(), (stream, line) => firstLines.Enqueue((stream, line)));
        _groups.Add(first.Pid);
        await Wait.UntilAsync(() => Ticks(firstLines, "out").Count() >= 5, TimeSpan.FromSeconds(10), "the first owner reads ticks");
        var (pid, started) = (first.Pid, first.Started);

        var second = await HandOverAsync(first, (stream, line) => secondLines.Enqueue((stream, line)), timeout.Token);
        await using var _ = second;
        var firstCount = firstLines.Count;
        Assert.True(LibC.Kill(pid, 0), "letting go stopped the instance");
        await Wait.UntilAsync(() => Ticks(secondLines, "out").Count() >= 5 && Ticks(secondLines, "err").Count() >= 5, TimeSpan.FromSeconds(10), "the second owner reads ticks");

        // Not a line lost or read twice at the seam, on either pipe: the ticks of both owners are 1..n in order.
        foreach (var stream in new[] { "out", "err" })
        {
            var all = Ticks(firstLines, stream).Concat(Ticks(secondLines, stream)).ToList();
            Assert.Equal(Enumerable.Range(1, all.Count), all);
        }
        Assert.Equal((pid, started), (second.Pid, second.Started));
        Assert.False(second.HasExited);

        File.WriteAllText(Path.Combine(_dir, "stop-now"), "");
        await second.Exited.WaitAsync(timeout.Token);
        Assert.Equal(3, second.ExitCode); // not its parent: the wrapper's file says it
        Assert.Contains(("out", "bye"), secondLines);
        Assert.Equal(firstCount, firstLines.Count); // the first owner read nothing after it let go
    }

    [Fact]
    public async Task The_second_owner_stops_the_whole_group_with_the_stop_signal()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var secondLines = new ConcurrentQueue<(string, string)>();
        var first = InstanceProcess.Start(Spec("trap 'echo stopping; exit 5' TERM; echo up; while :; do sleep 0.05; done"), new object(), (_, _) => { });
        _groups.Add(first.Pid);
        await Task.Delay(200, timeout.Token); // the trap is set before `up`; the first owner may read `up` or leave it in the pipe
        var pid = first.Pid;

        var second = await HandOverAsync(first, (stream, line) => secondLines.Enqueue((stream, line)), timeout.Token);
        await using var _ = second;
        await second.StopAsync(signal: 15, killTimeout: TimeSpan.FromSeconds(10)).WaitAsync(timeout.Token);

        Assert.Equal(5, second.ExitCode); // the app's TERM trap ran: TERM reached it through the group, not the wrapper
        Assert.Contains(("out", "stopping"), secondLines);
        Assert.False(LibC.Kill(-pid, 0), "something of the instance's group still runs");
    }
}

/// <summary>
/// Issue 12, toward step 3: a supervised instance (the Node example, ready by http) passes from one app runtime to
/// another (the old and the new agent's) and the new one supervises it: same pid, served by the new proxy, restarted
/// by the new owner when killed, never stopped by the old one on its way out.
/// </summary>
[Collection(Serial.Name)]
public sealed class AppInstanceHandoverTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();

    public void Dispose()
    {
        _http.Dispose();
        _dir.Dispose();
    }

    private CutoverConfig Config(int port) => ConfigLoader.Parse($"""
        app: sup
        strategy: rolling
        root: {_dir.Path}
        run:
          command: node server.js
          instances: 1
          ready_timeout: 5s
        proxy:
          listen: 127.0.0.1:{port}
        health:
          interval: 200ms
        """, _dir.Combine("cutover.yml"));

    [Fact]
    public async Task A_ready_instance_handed_to_a_new_app_runtime_keeps_its_pid_and_the_new_owner_restarts_it_when_killed()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var release = AppFactory.NodeRelease(_dir.Path, "1");
        var (oldPort, newPort) = (HealthServer.FreePort(), HealthServer.FreePort());
        var old = await AppRuntime.CreateAsync(Config(oldPort), _dir.Combine("old-home"), _http, new object(), NullLoggerFactory.Instance, timeout.Token);
        await using var adopting = await AppRuntime.CreateAsync(Config(newPort), _dir.Combine("new-home"), _http, new object(), NullLoggerFactory.Instance, timeout.Token);
        int pid;
        try
        {
            Assert.Null(await old.StartAllAsync("r1", release, timeout.Token));
            pid = old.Slots[0]!.Pid!.Value;

            var (description, stdout, stderr) = await InstanceHandoverTests.SendAcrossAsync(await old.Slots[0]!.HandOverAsync(), timeout.Token);
            var instance = adopting.NewInstance(0, "r1", release);
            var running = InstanceProcess.Adopt(description, stdout, stderr, (stream, line) => adopting.Log.Write(instance.Spec.Id, description.Pid, stream, line));
            Assert.Null(await instance.AdoptAsync(running, timeout.Token));
            adopting.Slots[0] = instance;
            Assert.Equal(pid, instance.Pid);
        }
        finally
        {
            await old.DisposeAsync(); // the old agent leaves: what it handed over keeps running
        }
        Assert.True(LibC.Kill(pid, 0), "the old owner stopped the instance it had handed over");
        Assert.StartsWith("hello from 1", await _http.GetStringAsync($"http://127.0.0.1:{newPort}/", timeout.Token));

        var adopted = adopting.Slots[0]!;
        LibC.Kill(pid, 9);
        await Wait.UntilAsync(() => adopted.State == InstanceState.Ready && adopted.Pid != pid, TimeSpan.FromSeconds(30), "the new owner restarts the killed instance");
        Assert.Equal(1, adopted.Restarts);
        Assert.Contains("exited with code", adopted.LastProblem);
        Assert.StartsWith("hello from 1", await _http.GetStringAsync($"http://127.0.0.1:{newPort}/", timeout.Token));
        Assert.False(LibC.Kill(-pid, 0), "something of the killed instance's group still runs");
    }
}
