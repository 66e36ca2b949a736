using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace Cutover.Platform;

/// <summary>
/// A loopback port nobody is listening on, for an instance to bind a moment later.
/// </summary>
/// <remarks>
/// Ports come from below the kernel's ephemeral range (ip_local_port_range). A port the kernel
/// hands out for "port 0" is also what it hands to the next outgoing connection, and the proxy
/// and health checks open those all the time: an instance told to listen on such a port would
/// occasionally find it taken by a connection's local end and exit with EADDRINUSE.
/// A port handed out is not handed out again for <see cref="Held"/>: between "free" and the bind
/// a moment later the port is still free to the kernel, and a second caller in this process (a
/// blue-green set started at once, two deploys of two apps) would otherwise be given it too and
/// one of the two binds would fail. The memory is process-wide because the port space is.
/// </remarks>
public static class LoopbackPort
{
    private const string EphemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
    private const int LowestPort = 10000;
    private static readonly TimeSpan Held = TimeSpan.FromSeconds(60);
    private static readonly ConcurrentDictionary<int, long> HandedOut = new();
    /// <summary>When the table may next be swept of expired entries (Environment.TickCount64).</summary>
    private static long _nextSweep;

    public static int Free()
    {
        var (first, last) = Candidates();
        var span = last - first + 1;
        var start = Random.Shared.Next(span);
        for (var i = 0; i < Math.Min(span, 2000); i++)
        {
            var port = first + (start + i) % span;
            if (IsFree(port) && TryHold(port)) return port;
        }
        var chosen = KernelChosen();
        TryHold(chosen);
        return chosen;
    }

    /// <summary>Claims the port for this process unless another caller holds it already.</summary>
    private static bool TryHold(int port)
    {
        var now = Environment.TickCount64;
        // Swept at most once a second: a sweep walks the whole table, and a caller handing out ports in a burst would
        // otherwise walk it on every call.
        var sweepAt = Volatile.Read(ref _nextSweep);
        if (now >= sweepAt && HandedOut.Count > 1024 && Interlocked.CompareExchange(ref _nextSweep, now + 1000, sweepAt) == sweepAt)
            foreach (var (held, at) in HandedOut)
                if (now - at > Held.TotalMilliseconds) HandedOut.TryRemove(new KeyValuePair<int, long>(held, at));
        while (true)
        {
            if (HandedOut.TryAdd(port, now)) return true;
            if (!HandedOut.TryGetValue(port, out var at)) continue;
            if (now - at <= Held.TotalMilliseconds) return false;
            if (HandedOut.TryUpdate(port, now, at)) return true;
        }
    }

    private static (int First, int Last) Candidates()
    {
        try
        {
            var parts = File.ReadAllText(EphemeralRangeFile).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            var ephemeralLow = int.Parse(parts[0]);
            var ephemeralHigh = int.Parse(parts[1]);
            if (ephemeralLow - 1 - LowestPort >= 1000) return (LowestPort, ephemeralLow - 1);
            if (65535 - ephemeralHigh >= 1000) return (ephemeralHigh + 1, 65535);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            // no procfs: fall through to a range that is outside Linux's default ephemeral range
        }
        return (LowestPort, 32767);
    }

    private static bool IsFree(int port)
    {
        // No SO_REUSEADDR: a bind that succeeds here means no listener and no connection owns the port.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(new IPEndPoint(IPAddress.Loopback, port));
            socket.Listen();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static int KernelChosen()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
