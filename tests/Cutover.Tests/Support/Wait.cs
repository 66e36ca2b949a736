using System.Diagnostics;

namespace Cutover.Tests.Support;

/// <summary>
/// The one way tests wait for something to become true: poll a condition until it holds or a bound passes.
/// <c>Until</c> throws a TimeoutException naming what it waited for (so a failure says what never happened);
/// <c>Within</c> returns false instead, for cleanup that must go on and for assertions that carry their own message.
/// </summary>
public static class Wait
{
    /// <summary>Short enough not to slow a test down, long enough not to spin a core of a 2-core machine.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(50);

    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what, TimeSpan? interval = null, CancellationToken cancellationToken = default) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, what, interval, cancellationToken);

    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, TimeSpan? interval = null, CancellationToken cancellationToken = default)
    {
        if (!await WithinAsync(condition, timeout, interval, cancellationToken))
            throw new TimeoutException($"waited {timeout.TotalSeconds:0.#} s for {what}");
    }

    public static Task<bool> WithinAsync(Func<bool> condition, TimeSpan timeout, TimeSpan? interval = null, CancellationToken cancellationToken = default) =>
        WithinAsync(() => Task.FromResult(condition()), timeout, interval, cancellationToken);

    public static async Task<bool> WithinAsync(Func<Task<bool>> condition, TimeSpan timeout, TimeSpan? interval = null, CancellationToken cancellationToken = default)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (await condition()) return true;
            if (clock.Elapsed >= timeout) return false;
            await Task.Delay(interval ?? DefaultInterval, cancellationToken);
        }
    }

    /// <summary>Synchronous, for Dispose and other places that cannot await.</summary>
    public static bool Within(Func<bool> condition, TimeSpan timeout, TimeSpan? interval = null)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (condition()) return true;
            if (clock.Elapsed >= timeout) return false;
            Thread.Sleep(interval ?? DefaultInterval);
        }
    }

    public static void Until(Func<bool> condition, TimeSpan timeout, string what, TimeSpan? interval = null)
    {
        if (!Within(condition, timeout, interval)) throw new TimeoutException($"waited {timeout.TotalSeconds:0.#} s for {what}");
    }
}
