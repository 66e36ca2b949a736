namespace Cutover.Platform;

/// <summary>
/// A deadline set again and again (per request on a keep-alive connection) for the cost of one write: the runtime's
/// timer, whose every change takes the timer queue's lock (TimerQueueTimer.Change, what CancelAfter does), is touched
/// only when the deadline must come sooner than the timer is set to fire. A tick that finds the deadline moved later
/// sets the timer again for what is left; one that finds none set lets it rest. Four CancelAfter calls per proxied
/// request were 4% of the agent's CPU under keep-alive load (perf; bench/README.md).
/// </summary>
public sealed class LazyDeadline : IDisposable
{
    private const long Never = long.MaxValue;

    private readonly Action<object?> _expired;
    private readonly object? _state;
    private readonly Lock _timerGate = new();
    private Timer? _timer;
    /// <summary>Environment.TickCount64 at which the deadline is, or <see cref="Never"/>.</summary>
    private long _dueAt = Never;
    /// <summary>When the timer is set to fire (under <see cref="_timerGate"/>), or <see cref="Never"/>.</summary>
    private long _firesAt = Never;
    private bool _disposed;

    /// <param name="expired">Called on a timer thread once a deadline passes (not again until the next <see cref="Arm"/>); never after <see cref="Dispose"/> returns.</param>
    public LazyDeadline(Action<object?> expired, object? state)
    {
        _expired = expired;
        _state = state;
    }

    /// <summary>The deadline is <paramref name="after"/> from now (replacing any other).</summary>
    public void Arm(TimeSpan after)
    {
        var due = Environment.TickCount64 + (long)after.TotalMilliseconds;
        // A full fence between this write and the read of _firesAt, as between OnTimer's write of _firesAt and its read of
        // _dueAt: of an Arm and a tick that meet, at least one sees the other's write, so no deadline is left without a timer.
        Interlocked.Exchange(ref _dueAt, due);
        if (due < Volatile.Read(ref _firesAt)) SetTimer(due);
    }

    /// <summary>
    /// While armed, the deadline moves to <paramref name="after"/> from now, for one plain write: a deadline that only
    /// moves later never needs the timer touched (it is set no later than the one armed, and its tick sets it again for
    /// what is left). For a watch stamped on every move (activity_timeout per chunk of a body); unarmed, it does nothing.
    /// The caller's flow is the one that arms and disarms: a postponement never races a <see cref="Disarm"/>.
    /// </summary>
    public void Postpone(TimeSpan after)
    {
        if (Volatile.Read(ref _dueAt) != Never) Volatile.Write(ref _dueAt, Environment.TickCount64 + (long)after.TotalMilliseconds);
    }

    /// <summary>No deadline (a tick on the way finds none).</summary>
    public void Disarm() => Volatile.Write(ref _dueAt, Never);

    private void SetTimer(long due)
    {
        lock (_timerGate)
        {
            if (_disposed || due >= _firesAt) return;
            _firesAt = due;
            _timer ??= new Timer(static state => ((LazyDeadline)state!).OnTimer(), this, Timeout.Infinite, Timeout.Infinite);
            _timer.Change(Math.Max(0, due - Environment.TickCount64), Timeout.Infinite);
        }
    }

    private void OnTimer()
    {
        // The callback runs under the gate, so once Dispose returns none runs (as a CancellationTokenRegistration's
        // Dispose waits for its callback): a connection handed over to another server is not touched after.
        lock (_timerGate)
        {
            if (_disposed) return;
            Interlocked.Exchange(ref _firesAt, Never);
            var due = Volatile.Read(ref _dueAt);
            if (due == Never) return;
            var left = due - Environment.TickCount64;
            if (left > 0)
            {
                _firesAt = due;
                _timer!.Change(left, Timeout.Infinite);
                return;
            }
            _expired(_state);
        }
    }

    public void Dispose()
    {
        lock (_timerGate)
        {
            _disposed = true;
            _timer?.Dispose();
        }
    }
}
