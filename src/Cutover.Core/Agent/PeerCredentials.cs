using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Cutover.Agent;

/// <summary>SO_PEERCRED on a Unix socket: which user is on the other end of the control socket.</summary>
public static class PeerCredentials
{
    private const int SolSocket = 1;
    private const int SoPeerCred = 17;

    public static (int Pid, uint Uid)? Read(Socket socket)
    {
        Span<byte> buffer = stackalloc byte[12];
        try
        {
            var length = socket.GetRawSocketOption(SolSocket, SoPeerCred, buffer);
            if (length < 12) return null;
            return (MemoryMarshal.Read<int>(buffer), MemoryMarshal.Read<uint>(buffer[4..]));
        }
        catch (SocketException)
        {
            return null;
        }
    }
}
