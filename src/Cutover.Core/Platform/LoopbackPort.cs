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
/// </remarks>
public static class LoopbackPort
{
    private const string EphemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range";
    private const int LowestPort = 10000;

    public static int Free()
    {
        var (first, last) = Candidates();
        var span = last - first + 1;
        var start = Random.Shared.Next(span);
        for (var i = 0; i < Math.Min(span, 2000); i++)
        {
            var port = first + (start + i) % span;
            if (IsFree(port)) return port;
        }
        return KernelChosen();
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
