using Microsoft.AspNetCore.Http;

namespace Cutover.Proxy;

/// <summary>The page every request of an app in maintenance gets, with 503 and Retry-After.</summary>
public sealed record MaintenancePage(string Body, string ContentType)
{
    /// <summary>What --page may weigh: it is held in memory and written to every request.</summary>
    public const int MaxBytes = 1 << 20;

    public static MaintenancePage Default { get; } = FromMessage("the service is down for maintenance; please try again shortly");

    public static MaintenancePage FromMessage(string message) => new(message.EndsWith('\n') ? message : message + "\n", "text/plain; charset=utf-8");
}

/// <summary>What <see cref="TrafficGate.WaitAsync"/> decided for one request.</summary>
public enum GateOutcome
{
    /// <summary>Not paused, or resumed while it was held: forward it.</summary>
    Pass,
    /// <summary>The pause ran out (its timeout) while it was held: 503.</summary>
    TimedOut,
    /// <summary>Already as many requests held as the gate takes: 503 at once, never unbounded memory.</summary>
    Full,
}

/// <summary>
/// One app's maintenance and pause state in the proxy (`cutover maintenance`, `cutover pause`/`resume`, and a
/// deploy's `migrations.pause`). Maintenance answers 503 with the page at once. A pause holds new requests (before
/// they pick an instance, so they count toward no instance's in-flight or drain) until resume, which releases them
/// to be forwarded, or until the pause's deadline, which answers them 503 and ends the pause: a pause never outlives
/// its timeout, so a CLI that dies mid-migration cannot leave the app paused.
/// </summary>
public sealed class TrafficGate(int maxHeld = TrafficGate.DefaultMaxHeld) : IDisposable
{
    /// <summary>Requests one app may have held at once; each costs a connection and a few KiB, not a thread.</summary>
    public const int DefaultMaxHeld = 10_000;

    /// <summary>The longest pause the agent takes: held requests are connections kept open.</summary>
    public static readonly TimeSpan MaxPause = TimeSpan.FromMinutes(10);

    /// <summary>A pause in force: its end, and the task that completes true on resume, false at the deadline.</summary>
    private sealed record Pause(DateTimeOffset Until, TaskCompletionSource<bool> Released, CancellationTokenSource Deadline);

    private readonly object _lock = new();
    private Pause? _pause;
    private MaintenancePage? _maintenance;
    private int _held;

    public MaintenancePage? Maintenance => Volatile.Read(ref _maintenance);
    /// <summary>When the pause in force ends by itself; null when not paused.</summary>
    public DateTimeOffset? PausedUntil => Volatile.Read(ref _pause)?.Until;
    /// <summary>Requests waiting for a resume right now.</summary>
    public int Held => Volatile.Read(ref _held);
    public int MaxHeld => maxHeld;

    public void SetMaintenance(MaintenancePage? page) => Volatile.Write(ref _maintenance, page);

    /// <summary>
    /// Holds new requests until <see cref="Resume"/> or <paramref name="timeout"/> from now. Pausing a paused app moves
    /// the deadline; the requests already held keep waiting on the same pause.
    /// </summary>
    public DateTimeOffset PauseFor(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), "a pause needs a positive timeout");
        lock (_lock)
        {
            var released = _pause?.Released ?? new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            _pause?.Deadline.Dispose();
            var deadline = new CancellationTokenSource(timeout);
            var pause = new Pause(DateTimeOffset.UtcNow + timeout, released, deadline);
            deadline.Token.Register(() => End(pause, resumed: false));
            Volatile.Write(ref _pause, pause);
            return pause.Until;
        }
    }

    /// <summary>Releases every held request to its instance; false when there was no pause.</summary>
    public bool Resume()
    {
        var pause = Volatile.Read(ref _pause);
        return pause is not null && End(pause, resumed: true);
    }

    private bool End(Pause pause, bool resumed)
    {
        lock (_lock)
        {
            if (!ReferenceEquals(_pause, pause)) return false;
            Volatile.Write(ref _pause, null);
        }
        pause.Released.TrySetResult(resumed);
        pause.Deadline.Dispose();
        return true;
    }

    /// <summary>
    /// Completes once no pause is in force (resumed, or ended by its timeout), at once when there is none; a pause moved
    /// or begun meanwhile is waited for too. The agent leaving after an upgrade waits here before its drain begins.
    /// </summary>
    public async Task UntilUnpausedAsync(CancellationToken cancellationToken)
    {
        while (Volatile.Read(ref _pause) is { } pause) await pause.Released.Task.WaitAsync(cancellationToken);
    }

    /// <summary>
    /// Waits while the app is paused. A request whose client goes away while held throws the cancellation and is
    /// counted out like any other.
    /// </summary>
    public async ValueTask<GateOutcome> WaitAsync(CancellationToken requestAborted)
    {
        var pause = Volatile.Read(ref _pause);
        if (pause is null) return GateOutcome.Pass;
        if (Interlocked.Increment(ref _held) > maxHeld)
        {
            Interlocked.Decrement(ref _held);
            return GateOutcome.Full;
        }
        try
        {
            return await pause.Released.Task.WaitAsync(requestAborted) ? GateOutcome.Pass : GateOutcome.TimedOut;
        }
        finally
        {
            Interlocked.Decrement(ref _held);
        }
    }

    /// <summary>
    /// Paths never held nor answered with the maintenance page: ACME http-01 challenges (a certificate must still be
    /// issued) and the app's own health path (whatever checks it through the proxy must see the app as it is).
    /// </summary>
    public static bool IsExempt(HttpRequest request, string? healthPath) =>
        request.Path.StartsWithSegments("/.well-known/acme-challenge")
        || (healthPath is not null && request.Path.Equals(healthPath, StringComparison.Ordinal));

    public void Dispose()
    {
        var pause = Volatile.Read(ref _pause);
        if (pause is not null) End(pause, resumed: false);
    }
}
