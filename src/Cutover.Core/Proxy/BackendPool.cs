using System.Collections.Immutable;

namespace Cutover.Proxy;

/// <summary>
/// The set of instances the proxy may route to, swapped atomically: a change is in force for the very next
/// request, with no asynchronous apply step to wait for. Only ready instances are ever added, so there is no
/// "Unknown" health state to route to and no panic mode: an empty pool answers 503.
/// </summary>
public sealed class BackendPool
{
    private ImmutableArray<Backend> _backends = [];
    private int _next;

    public ImmutableArray<Backend> Backends => ImmutableInterlocked.InterlockedCompareExchange(ref _backends, default, default);

    public void Add(Backend backend) => ImmutableInterlocked.Update(ref _backends, list => list.Add(backend));

    /// <summary>Replaces the whole set in one step: the blue-green switch. Returns the set it replaced.</summary>
    public ImmutableArray<Backend> ReplaceAll(IEnumerable<Backend> backends)
    {
        var next = backends.ToImmutableArray();
        return ImmutableInterlocked.InterlockedExchange(ref _backends, next);
    }

    public bool Remove(Backend backend) =>
        ImmutableInterlocked.Update(ref _backends, list => list.Remove(backend));

    /// <summary>Power of two choices on in-flight counts, skipping <paramref name="exclude"/> (a retry's first pick).</summary>
    public Backend? Pick(Backend? exclude = null)
    {
        var backends = _backends;
        if (exclude is not null && backends.Length > 1) backends = backends.Remove(exclude);
        if (backends.Length == 0) return null;
        if (backends.Length == 1) return backends[0];
        var n = (uint)Interlocked.Increment(ref _next);
        var a = backends[(int)(n % (uint)backends.Length)];
        var b = backends[(int)((n * 2654435761u >> 7) % (uint)backends.Length)];
        return b.InFlight < a.InFlight ? b : a;
    }
}
