using System.Collections.Concurrent;
using System.Text.Json;
using Cutover.Config;
using Cutover.Platform;
using Cutover.Releases;
using Cutover.Supervisor;
using Cutover.Tests.Platform;
using Cutover.Tests.Support;
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
        var handover = await first.HandOverAsync();
        var (ours, theirs) = FdPassingTests.SocketPair();
        ReceivedMessage received;
        using (ours)
        using (theirs)
        {
            var description = JsonSerializer.SerializeToUtf8Bytes(handover.Description, Json.Compact);
            await FdPassing.SendAsync(ours, description, [(int)handover.Stdout.DangerousGetHandle(), (int)handover.Stderr.DangerousGetHandle()], cancellationToken);
            received = await FdPassing.ReceiveAsync(theirs, cancellationToken);
        }
        await first.DisposeAsync(); // lets go: closes its copies of the pipes, signals nothing
        var adopted = JsonSerializer.Deserialize<InstanceProcessDescription>(received.Payload, Json.Compact)!;
        return InstanceProcess.Adopt(adopted, new SafePipeHandle(received.Descriptors[0], ownsHandle: true), new SafePipeHandle(received.Descriptors[1], ownsHandle: true), onOutput);
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
