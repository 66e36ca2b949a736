using System.Diagnostics;
using Cutover.Hooks;
using Cutover.Tests.Support;

namespace Cutover.Tests.Hooks;

/// <summary>A hook never outlives its step: background processes, timeouts, and a deploy that is SIGKILLed.</summary>
public class HookRunnerTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private HookContext Context(TimeSpan timeout) => new("app", _dir.Path, "r1", _dir.Path, null, timeout);

    /// <summary>Processes whose command line holds <paramref name="marker"/> (a unique sleep length).</summary>
    private static IReadOnlyList<int> ProcessesWith(string marker) => OwnedProcesses.Mentioning(marker);

    internal static Task<bool> GoneWithin(string marker, TimeSpan limit) => Wait.WithinAsync(() => ProcessesWith(marker).Count == 0, limit);

    [Fact]
    public async Task A_background_process_holding_the_output_open_does_not_hold_the_hook_and_does_not_survive_it()
    {
        var lines = new List<string>();
        var clock = Stopwatch.StartNew();
        await new HookRunner().RunAsync("build", ["sleep 61.17 & echo started"], Context(TimeSpan.FromSeconds(30)), (_, l) => lines.Add(l), CancellationToken.None);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the hook took {clock.Elapsed} (it waited for the background process)");
        Assert.Contains("started", lines);
        Assert.True(await GoneWithin("61.17", TimeSpan.FromSeconds(5)), "the hook's background sleep outlived the hook");
    }

    [Fact]
    public async Task At_the_timeout_the_whole_process_group_is_killed_even_with_its_output_held_open()
    {
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<HookFailedException>(() =>
            new HookRunner().RunAsync("build", ["(sleep 62.17 &) ; sleep 63.17"], Context(TimeSpan.FromSeconds(1)), (_, _) => { }, CancellationToken.None));
        Assert.Contains("timed out after 1s", e.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the hook took {clock.Elapsed}");
        Assert.True(await GoneWithin("62.17", TimeSpan.FromSeconds(5)), "the background sleep survived the timeout");
        Assert.True(await GoneWithin("63.17", TimeSpan.FromSeconds(5)), "the foreground sleep survived the timeout");
    }

    [Fact]
    public async Task Cancelling_the_deploy_kills_the_hook_group()
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            new HookRunner().RunAsync("build", ["sleep 64.17 & sleep 65.17"], Context(TimeSpan.FromMinutes(5)), (_, _) => { }, cancel.Token));
        Assert.True(await GoneWithin("64.17", TimeSpan.FromSeconds(5)));
        Assert.True(await GoneWithin("65.17", TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task A_hook_does_not_outlive_a_deploy_that_was_SIGKILLed()
    {
        var root = _dir.Combine("root");
        var source = _dir.Combine("src");
        AppFactory.WriteHelloPhp(source, "1.0.0");
        var config = AppFactory.WriteConfig(_dir.Path, root, "hooks:\n  build: [\"sleep 66.17 & echo hook-started; sleep 67.17\"]\n");
        var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var cli = CutoverCli.Start(_dir.Path, lines.Enqueue, "deploy", source, "-c", config);
        await Wait.WithinAsync(() => ProcessesWith("67.17").Count > 0, TimeSpan.FromSeconds(60));
        Assert.NotEmpty(ProcessesWith("67.17"));
        cli.Kill(); // SIGKILL, the CLI alone: its children are not signalled
        await cli.WaitForExitAsync();
        Assert.True(await GoneWithin("66.17", TimeSpan.FromSeconds(5)), "the hook's background process outlived the SIGKILLed deploy");
        Assert.True(await GoneWithin("67.17", TimeSpan.FromSeconds(5)), "the hook outlived the SIGKILLed deploy");
    }
}
