namespace Cutover.Platform.Epoll;

/// <summary>
/// The proxy's socket threads: one <see cref="EpollLoop"/> per core, as nginx's `worker_processes auto`. A client
/// connection is given to one, in turn, and everything it does (its upstream connections too) runs there.
/// </summary>
public sealed class EpollLoops : IDisposable
{
    private readonly EpollLoop[] _loops;
    private int _last = -1;

    /// <param name="onError">What an exception that escaped a connection's code on a loop thread is reported to.</param>
    /// <param name="descriptors">The descriptor numbers the loops' sockets leave free; default: the top of this process's limit.</param>
    public EpollLoops(Action<Exception> onError, int? count = null, DescriptorReserve? descriptors = null)
    {
        descriptors ??= new DescriptorReserve();
        _loops = new EpollLoop[Math.Max(1, count ?? Environment.ProcessorCount)];
        for (var i = 0; i < _loops.Length; i++) _loops[i] = new EpollLoop(i, onError, descriptors);
    }

    public int Count => _loops.Length;

    internal EpollLoop this[int index] => _loops[index];

    /// <summary>The loop for the next connection, round-robin.</summary>
    internal EpollLoop Next() => _loops[(int)((uint)Interlocked.Increment(ref _last) % (uint)_loops.Length)];

    /// <summary>
    /// The loop for a connection <paramref name="accepting"/> accepted: that one (the connection then runs where it
    /// started, on one thread), unless it watches more than one connection beyond the least busy loop (a burst of new
    /// keep-alive connections all accepted by the first loop to wake), which then gets it.
    /// </summary>
    internal EpollLoop ForAccepted(EpollLoop accepting)
    {
        var least = accepting;
        foreach (var loop in _loops)
            if (loop.Connections < least.Connections) least = loop;
        return accepting.Connections > least.Connections + 1 ? least : accepting;
    }

    /// <summary>The loop whose thread this is, or null.</summary>
    internal EpollLoop? Current
    {
        get
        {
            foreach (var loop in _loops)
                if (loop.IsCurrentThread) return loop;
            return null;
        }
    }

    public void Dispose()
    {
        foreach (var loop in _loops) loop.Dispose();
    }
}
