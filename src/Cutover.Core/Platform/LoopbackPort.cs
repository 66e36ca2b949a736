using System.Net;
using System.Net.Sockets;

namespace Cutover.Platform;

/// <summary>A loopback port nobody is listening on right now, as the kernel hands them out.</summary>
public static class LoopbackPort
{
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
