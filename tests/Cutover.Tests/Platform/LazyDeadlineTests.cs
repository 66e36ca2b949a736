using Cutover.Platform;
using Cutover.Tests.Support;

namespace Cutover.Tests.Platform;

/// <summary>
/// The deadline the proxy sets per request without touching the runtime's timer each time: it fires once a deadline
/// passes, never for one moved later or taken away, and a deadline brought sooner is not left to the later timer.
/// </summary>
public sealed class LazyDeadlineTests
{
    private sealed class Expiries
    {
        public int Count;
        public long LastAt;
    }

    private static LazyDeadline Counting(Expiries expiries) => new(state =>
    {
        var e = (Expiries)state!;
        Volatile.Write(ref e.LastAt, Environment.TickCount64);
        Interlocked.Increment(ref e.Count);
    }, expiries);

    [Fact]
    public async Task It_fires_once_when_the_deadline_passes_and_not_for_a_deadline_taken_away()
    {
        var expiries = new Expiries();
        using var deadline = Counting(expiries);
        deadline.Arm(TimeSpan.FromMilliseconds(100));
        await Wait.UntilAsync(() => Volatile.Read(ref expiries.Count) == 1, TimeSpan.FromSeconds(5), "the deadline fired");
        await Task.Delay(300);
        Assert.Equal(1, expiries.Count);

        deadline.Arm(TimeSpan.FromMilliseconds(100));
        deadline.Disarm();
        await Task.Delay(400);
        Assert.Equal(1, expiries.Count);
    }

    [Fact]
    public async Task A_deadline_moved_later_again_and_again_fires_only_after_the_last_one()
    {
        var expiries = new Expiries();
        using var deadline = Counting(expiries);
        // As a keep-alive connection's requests do: each sets it further out before the last one passes.
        var start = Environment.TickCount64;
        var lastArmed = start;
        for (var i = 0; i < 10; i++)
        {
            lastArmed = Environment.TickCount64;
            deadline.Arm(TimeSpan.FromMilliseconds(2000));
            await Task.Delay(20);
        }
        Assert.Equal(0, expiries.Count);
        await Wait.UntilAsync(() => Volatile.Read(ref expiries.Count) == 1, TimeSpan.FromSeconds(5), "the deadline fired");
        Assert.True(expiries.LastAt - lastArmed >= 1990, $"fired {expiries.LastAt - lastArmed} ms after the last arm of 2000 ms (the first {lastArmed - start} ms before)");
    }

    [Fact]
    public async Task A_postponed_deadline_fires_only_once_postponing_stops_and_postponing_an_unarmed_one_arms_nothing()
    {
        var expiries = new Expiries();
        using var deadline = Counting(expiries);
        // As activity_timeout over a body: armed at its start, postponed at every chunk for longer than the timeout.
        deadline.Arm(TimeSpan.FromMilliseconds(150));
        var lastMove = Environment.TickCount64;
        for (var i = 0; i < 30; i++)
        {
            await Task.Delay(20);
            lastMove = Environment.TickCount64;
            deadline.Postpone(TimeSpan.FromMilliseconds(150));
        }
        Assert.Equal(0, expiries.Count);
        await Wait.UntilAsync(() => Volatile.Read(ref expiries.Count) == 1, TimeSpan.FromSeconds(5), "the deadline fired once the moves stopped");
        Assert.True(expiries.LastAt - lastMove >= 140, $"fired {expiries.LastAt - lastMove} ms after the last move of a 150 ms deadline");

        // The body ended (disarmed); a late move does not bring the watch back.
        deadline.Arm(TimeSpan.FromMilliseconds(150));
        deadline.Disarm();
        deadline.Postpone(TimeSpan.FromMilliseconds(50));
        await Task.Delay(500);
        Assert.Equal(1, expiries.Count);
    }

    [Fact]
    public async Task A_deadline_brought_sooner_fires_at_its_own_time_not_at_the_earlier_later_one()
    {
        var expiries = new Expiries();
        using var deadline = Counting(expiries);
        deadline.Arm(TimeSpan.FromSeconds(30)); // keep-alive idleness
        var armed = Environment.TickCount64;
        deadline.Arm(TimeSpan.FromMilliseconds(100)); // a head that came in part
        await Wait.UntilAsync(() => Volatile.Read(ref expiries.Count) == 1, TimeSpan.FromSeconds(5), "the sooner deadline fired");
        Assert.True(expiries.LastAt - armed < 5000);
    }

    [Fact]
    public async Task Arms_racing_the_timer_never_lose_a_deadline_nor_fire_one_that_was_moved()
    {
        // Two threads arm short deadlines and take them away, as fast as they can, while the timer ticks: every
        // deadline left armed at the end fires, and none fires while the last arm's deadline is still ahead.
        // Threads of their own, not the pool's: two pool threads spinning for a second on two cores held up every
        // timer callback of the test process (other tests' response_timeout fired 2-3 s late, their apps' delays too).
        var expiries = new Expiries();
        using var deadline = Counting(expiries);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var workers = Enumerable.Range(0, 2).Select(w => Task.Factory.StartNew(() =>
        {
            var i = 0;
            while (!stop.IsCancellationRequested)
            {
                deadline.Arm(TimeSpan.FromMilliseconds(1 + (i++ % 3)));
                if (i % 2 == 0) deadline.Disarm();
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        await Task.WhenAll(workers);
        var before = Volatile.Read(ref expiries.Count);
        deadline.Arm(TimeSpan.FromMilliseconds(50));
        await Wait.UntilAsync(() => Volatile.Read(ref expiries.Count) > before, TimeSpan.FromSeconds(5), "the last deadline fired");
    }

    [Fact]
    public async Task Nothing_fires_after_dispose()
    {
        var expiries = new Expiries();
        var deadline = Counting(expiries);
        deadline.Arm(TimeSpan.FromMilliseconds(50));
        deadline.Dispose();
        await Task.Delay(300);
        Assert.Equal(0, expiries.Count);
    }
}
