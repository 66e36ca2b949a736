using System.Runtime.CompilerServices;
using Cutover.Platform;

namespace Cutover.Tests.Platform;

/// <summary>
/// The proxy's async method builder (Platform/DeepPoolingValueTaskMethodBuilder): results and exceptions arrive as with
/// the framework's builders, the ExecutionContext flows across awaits, and a box comes back for the next call, so a
/// method that waits allocates nothing in its steady state.
/// </summary>
public class DeepPoolingValueTaskMethodBuilderTests
{
    private static readonly AsyncLocal<string> Caller = new();

    [Fact]
    public async Task Results_and_exceptions_arrive_sync_and_async_and_the_context_flows_to_a_continuation_on_another_thread()
    {
        var gate = new Gate();
        Assert.Equal(8, await AddOneAsync(gate, 7, wait: false));
        await Assert.ThrowsAsync<InvalidOperationException>(async () => await ThrowAsync(gate, wait: false));

        var waiting = AddOneAsync(gate, 41, wait: true);
        Assert.False(waiting.IsCompleted);
        gate.Release();
        Assert.Equal(42, await waiting);

        var failing = ThrowAsync(gate, wait: true);
        gate.Release();
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(async () => await failing);
        Assert.Equal("after the wait", thrown.Message);

        // The caller's AsyncLocal reaches the method after its wait, though the wait ends on a thread-pool thread.
        Caller.Value = "the caller";
        var seen = ReadCallerAfterWaitAsync(gate);
        Caller.Value = "changed after the call";
        await Task.Run(gate.Release);
        Assert.Equal("the caller", await seen);
    }

    /// <summary>
    /// As on the proxy's socket thread: a batch of calls all waiting at once (one epoll wake-up starts many requests),
    /// then all finishing. The framework's PoolingAsyncValueTaskMethodBuilder keeps one box per thread, so every batch
    /// allocated all but one of its boxes; here, once the first batch has returned its boxes, none.
    /// </summary>
    [Fact]
    public void Batches_of_waiting_calls_allocate_nothing_once_the_first_batch_returned_its_boxes()
    {
        var gates = Enumerable.Range(0, 16).Select(_ => new Gate()).ToArray();
        var pending = new ValueTask<int>[gates.Length];
        var wrong = 0;
        void OneBatch(int round)
        {
            for (var i = 0; i < gates.Length; i++) pending[i] = AddOneAsync(gates[i], round + i, wait: true);
            foreach (var gate in gates) gate.Release();
            // Counted, not asserted, inside the measured loop: xunit's Assert.Equal allocates a comparer per call.
            for (var i = 0; i < gates.Length; i++) if (pending[i].Result != round + i + 1) wrong++;
        }
        OneBatch(0); // the first batch makes the boxes (and JIT-compiles)
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var round = 1; round <= 100; round++) OneBatch(round);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, wrong);
        // A box is well over 100 bytes: 1,600 calls allocating even one box per batch would pass 10 KB.
        Assert.True(allocated < 1000, $"100 batches of 16 calls allocated {allocated} bytes");
    }

    [AsyncMethodBuilder(typeof(DeepPoolingValueTaskMethodBuilder<>))]
    private static async ValueTask<int> AddOneAsync(Gate gate, int value, bool wait)
    {
        if (wait) await gate;
        return value + 1;
    }

    [AsyncMethodBuilder(typeof(DeepPoolingValueTaskMethodBuilder<>))]
    private static async ValueTask<int> ThrowAsync(Gate gate, bool wait)
    {
        if (!wait) throw new InvalidOperationException("before any wait");
        await gate;
        throw new InvalidOperationException("after the wait");
    }

    [AsyncMethodBuilder(typeof(DeepPoolingValueTaskMethodBuilder<>))]
    private static async ValueTask<string?> ReadCallerAfterWaitAsync(Gate gate)
    {
        await gate;
        return Caller.Value;
    }

    /// <summary>An awaitable that completes when the test says so, on the thread that says so; allocates nothing.</summary>
    private sealed class Gate : ICriticalNotifyCompletion
    {
        private Action? _continuation;

        public Gate GetAwaiter() => this;
        public bool IsCompleted => false;
        public void GetResult() { }
        public void OnCompleted(Action continuation) => _continuation = continuation;
        public void UnsafeOnCompleted(Action continuation) => _continuation = continuation;

        public void Release()
        {
            var continuation = _continuation!;
            _continuation = null;
            continuation();
        }
    }
}
