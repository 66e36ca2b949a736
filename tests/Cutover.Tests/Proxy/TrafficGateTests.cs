using Cutover.Proxy;

namespace Cutover.Tests.Proxy;

/// <summary>The pause itself, without a proxy around it: release on resume, 503 and the end of the pause at its deadline, the cap.</summary>
public class TrafficGateTests
{
    [Fact]
    public async Task Held_requests_pass_on_resume_and_are_counted_while_held()
    {
        using var gate = new TrafficGate();
        gate.PauseFor(TimeSpan.FromMinutes(1));
        var held = Enumerable.Range(0, 3).Select(_ => gate.WaitAsync(CancellationToken.None).AsTask()).ToList();
        Assert.Equal(3, gate.Held);
        Assert.All(held, t => Assert.False(t.IsCompleted));

        Assert.True(gate.Resume());
        Assert.All(await Task.WhenAll(held).WaitAsync(TimeSpan.FromSeconds(5)), o => Assert.Equal(GateOutcome.Pass, o));
        Assert.Equal(0, gate.Held);
        Assert.Null(gate.PausedUntil);
        Assert.Equal(GateOutcome.Pass, await gate.WaitAsync(CancellationToken.None));
        Assert.False(gate.Resume());
    }

    /// <summary>What an agent leaving after an upgrade waits for before its drain: no pause in force, however it ended.</summary>
    [Fact]
    public async Task UntilUnpaused_completes_at_once_without_a_pause_and_otherwise_when_a_moved_pause_ends()
    {
        using var gate = new TrafficGate();
        Assert.True(gate.UntilUnpausedAsync(CancellationToken.None).IsCompleted);
        gate.PauseFor(TimeSpan.FromMinutes(1));
        var unpaused = gate.UntilUnpausedAsync(CancellationToken.None);
        gate.PauseFor(TimeSpan.FromMinutes(2)); // moved, not ended
        Assert.False(unpaused.IsCompleted);
        Assert.True(gate.Resume());
        await unpaused.WaitAsync(TimeSpan.FromSeconds(5));
        gate.PauseFor(TimeSpan.FromMilliseconds(200));
        await gate.UntilUnpausedAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5)); // ended by its timeout
        Assert.Null(gate.PausedUntil);
    }

    [Fact]
    public async Task A_pause_ends_at_its_deadline_answering_the_held_ones_timed_out()
    {
        using var gate = new TrafficGate();
        gate.PauseFor(TimeSpan.FromMilliseconds(300));
        var outcome = await gate.WaitAsync(CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(GateOutcome.TimedOut, outcome);
        // The pause does not outlive its timeout: the next request passes.
        Assert.Null(gate.PausedUntil);
        Assert.Equal(GateOutcome.Pass, await gate.WaitAsync(CancellationToken.None));
    }

    [Fact]
    public async Task Pausing_again_moves_the_deadline_and_keeps_the_held_requests_waiting()
    {
        using var gate = new TrafficGate();
        gate.PauseFor(TimeSpan.FromMilliseconds(200));
        var held = gate.WaitAsync(CancellationToken.None).AsTask();
        gate.PauseFor(TimeSpan.FromMinutes(1));
        await Task.Delay(500);
        Assert.False(held.IsCompleted);
        gate.Resume();
        Assert.Equal(GateOutcome.Pass, await held.WaitAsync(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public async Task Past_the_cap_a_request_is_refused_at_once_instead_of_held()
    {
        using var gate = new TrafficGate(maxHeld: 2);
        gate.PauseFor(TimeSpan.FromMinutes(1));
        var held = new[] { gate.WaitAsync(CancellationToken.None).AsTask(), gate.WaitAsync(CancellationToken.None).AsTask() };
        Assert.Equal(GateOutcome.Full, await gate.WaitAsync(CancellationToken.None));
        Assert.Equal(2, gate.Held);
        gate.Resume();
        await Task.WhenAll(held).WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_client_that_leaves_while_held_is_counted_out()
    {
        using var gate = new TrafficGate();
        gate.PauseFor(TimeSpan.FromMinutes(1));
        using var gone = new CancellationTokenSource();
        var held = gate.WaitAsync(gone.Token).AsTask();
        Assert.Equal(1, gate.Held);
        gone.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => held);
        Assert.Equal(0, gate.Held);
    }

    [Fact]
    public void Acme_challenges_and_the_health_path_are_never_held()
    {
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Request.Path = "/.well-known/acme-challenge/token";
        Assert.True(TrafficGate.IsExempt(context.Request, "/health"));
        context.Request.Path = "/health";
        Assert.True(TrafficGate.IsExempt(context.Request, "/health"));
        context.Request.Path = "/orders";
        Assert.False(TrafficGate.IsExempt(context.Request, "/health"));
    }
}
