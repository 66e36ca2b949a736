using Cutover.Tests.Support;
using Cutover.Platform;

namespace Cutover.Tests.Platform;

/// <summary>
/// The "I/O threads" here are dedicated threads completing a task synchronously: with inline socket completions,
/// that is what the agent's epoll threads do to whatever awaited a socket. Flows start through Task.Run, as the
/// agent's do, so xunit's own synchronization context plays no part.
/// </summary>
public class ThreadPoolContextTests
{
    private sealed record Resumed(int Thread, bool Pool);

    private static async Task<(List<Resumed> Resumed, List<int> IoThreads)> RunAsync(Func<Func<Task>, Task> start)
    {
        var gates = new[] { new TaskCompletionSource(), new TaskCompletionSource() };
        var resumed = new List<Resumed>();
        var waitingAt = 0;
        var flow = start(async () =>
        {
            foreach (var gate in gates)
            {
                Interlocked.Increment(ref waitingAt);
                await gate.Task;
                lock (resumed) resumed.Add(new Resumed(Environment.CurrentManagedThreadId, Thread.CurrentThread.IsThreadPoolThread));
            }
        });
        var ioThreads = new List<int>();
        foreach (var gate in gates)
        {
            // The flow must be suspended on the gate, not merely about to reach it.
            await Wait.UntilAsync(() => Volatile.Read(ref waitingAt) > ioThreads.Count, TimeSpan.FromSeconds(10), "the flow to reach its gate", TimeSpan.FromMilliseconds(5));
            // Reaching the gate is observable, being suspended on it is not: give the await time to register.
            await Task.Delay(50);
            var io = new Thread(() =>
            {
                ioThreads.Add(Environment.CurrentManagedThreadId);
                gate.SetResult();
            });
            io.Start();
            io.Join();
            await Wait.UntilAsync(() => Volatile.Read(ref resumed).Count >= ioThreads.Count, TimeSpan.FromSeconds(10), "the flow to resume after its gate", TimeSpan.FromMilliseconds(5));
        }
        await flow;
        return (resumed, ioThreads);
    }

    [Fact]
    public async Task Without_it_code_after_an_await_runs_on_the_io_thread_that_completed_it()
    {
        var (resumed, ioThreads) = await RunAsync(flow => Task.Run(flow));
        Assert.Equal(ioThreads, resumed.Select(r => r.Thread));
    }

    [Fact]
    public async Task A_flow_under_it_resumes_on_the_thread_pool_after_every_await()
    {
        var (resumed, ioThreads) = await RunAsync(flow => Task.Run(() => ThreadPoolContext.Run(flow)));
        Assert.Equal(2, resumed.Count);
        Assert.All(resumed, r => Assert.True(r.Pool));
        Assert.Empty(resumed.Select(r => r.Thread).Intersect(ioThreads));
    }
}
