namespace Cutover.Platform.Epoll;

/// <summary>
/// Keeps the top descriptor numbers below the soft limit free of the proxy's sockets, for everything else the process
/// opens: its files, its instances' pipes, and the runtime's own (.NET reads /proc/self/status as it starts a thread,
/// and fails fast, killing the agent, when that open fails). The kernel gives the lowest free number, so a socket
/// lands in the reserved range only when every number below it is taken: such a socket is closed at once (a client
/// refused, an upstream connection failed) rather than taking what the runtime needs. The limit is asked again once a
/// second, so a limit lowered under a running agent (prlimit(1)) is followed. (.NET starts with the soft limit raised
/// to the hard one, 524288 under systemd; a lower hard limit, or a lowered one, is where this matters.)
/// </summary>
public sealed class DescriptorReserve
{
    private const long RefreshMilliseconds = 1000;
    private readonly Func<long> _softLimit;
    private long _firstReserved;
    private long _refreshAt;

    /// <param name="softLimit">Reads the soft limit (<see cref="LibC.SoftFileLimit"/>).</param>
    public DescriptorReserve(Func<long>? softLimit = null)
    {
        _softLimit = softLimit ?? LibC.SoftFileLimit;
        _firstReserved = FirstReserved(_softLimit());
        _refreshAt = Environment.TickCount64 + RefreshMilliseconds;
    }

    /// <summary>How many of the top numbers are kept: 1/32 of the limit, at least 16 and at most 256.</summary>
    public static long Size(long softLimit) => Math.Clamp(softLimit / 32, 16, 256);

    private static long FirstReserved(long softLimit) => softLimit == long.MaxValue ? long.MaxValue : Math.Max(0, softLimit - Size(softLimit));

    /// <summary>Whether <paramref name="fd"/> (just returned by accept or socket) is one of the reserved numbers.</summary>
    public bool IsReserved(long fd)
    {
        var now = Environment.TickCount64;
        if (now >= Volatile.Read(ref _refreshAt))
        {
            Volatile.Write(ref _firstReserved, FirstReserved(_softLimit()));
            Volatile.Write(ref _refreshAt, now + RefreshMilliseconds);
        }
        return fd >= Volatile.Read(ref _firstReserved);
    }
}
