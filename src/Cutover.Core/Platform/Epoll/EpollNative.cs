using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Cutover.Platform.Epoll;

/// <summary>The Linux calls the proxy's own socket loops make: epoll, an eventfd to wake a loop, recv, send, accept4.</summary>
internal static unsafe partial class EpollNative
{
    public const uint EpollIn = 0x001;
    public const uint EpollOut = 0x004;
    public const uint EpollErr = 0x008;
    public const uint EpollHup = 0x010;
    public const uint EpollRdHup = 0x2000;
    public const uint EpollExclusive = 1u << 28;
    public const uint EpollEt = 1u << 31;

    public const int EpollCtlAdd = 1;
    public const int EpollCtlDel = 2;

    public const int EAgain = 11;
    public const int EIntr = 4;

    private const int EpollCloexec = 0x80000;
    private const int EfdCloexec = 0x80000;
    private const int EfdNonblock = 0x800;
    private const int MsgNoSignal = 0x4000;
    private const int SockCloexec = 0x80000;
    private const int SockNonblock = 0x800;

    /// <summary>struct epoll_event is packed on x86_64 (12 bytes: events, then data at 4), naturally aligned elsewhere (16, data at 8).</summary>
    public static readonly int EventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    public static readonly int EventDataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int EpollCtlNative(int epfd, int op, int fd, byte* @event);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    public static partial int EpollWait(int epfd, byte* events, int maxEvents, int timeout);

    [LibraryImport("libc", EntryPoint = "eventfd", SetLastError = true)]
    private static partial int EventFd(uint initval, int flags);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint Write(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static partial nint RecvNative(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static partial nint SendNative(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "accept4", SetLastError = true)]
    private static partial int Accept4Native(int fd, byte* address, int* addressLength, int flags);

    [LibraryImport("libc", EntryPoint = "getsockname", SetLastError = true)]
    private static partial int GetSockNameNative(int fd, byte* address, int* addressLength);

    [LibraryImport("libc", EntryPoint = "shutdown", SetLastError = true)]
    private static partial int ShutdownNative(int fd, int how);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int PollNative(long* fds, nuint count, int timeout);

    /// <summary>sockaddr_storage's size: room for any address.</summary>
    private const int AddressCapacity = 128;

    public static int CreateEpoll()
    {
        var fd = EpollCreate1(EpollCloexec);
        if (fd < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        return fd;
    }

    public static int CreateWakeEvent()
    {
        var fd = EventFd(0, EfdCloexec | EfdNonblock);
        if (fd < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        return fd;
    }

    public static void Wake(int eventFd)
    {
        ulong one = 1;
        Write(eventFd, (byte*)&one, sizeof(ulong));
    }

    /// <summary>epoll_ctl ADD (events, data) or DEL; the errno, 0 on success.</summary>
    public static int Control(int epoll, int op, int fd, uint events, ulong data)
    {
        var buffer = stackalloc byte[16];
        *(uint*)buffer = events;
        *(ulong*)(buffer + EventDataOffset) = data;
        return EpollCtlNative(epoll, op, fd, buffer) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    /// <summary>recv(2): bytes (0 at the end of the stream), or -1 with <paramref name="errno"/>.</summary>
    public static int Recv(int fd, Span<byte> buffer, out int errno)
    {
        nint n;
        fixed (byte* p = buffer) n = RecvNative(fd, p, (nuint)buffer.Length, 0);
        errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
        return (int)n;
    }

    /// <summary>send(2) without SIGPIPE: bytes taken, or -1 with <paramref name="errno"/>.</summary>
    public static int Send(int fd, ReadOnlySpan<byte> buffer, out int errno)
    {
        nint n;
        fixed (byte* p = buffer) n = SendNative(fd, p, (nuint)buffer.Length, MsgNoSignal);
        errno = n < 0 ? Marshal.GetLastPInvokeError() : 0;
        return (int)n;
    }

    /// <summary>
    /// accept4(2) of one connection, non-blocking and close-on-exec: its descriptor and the peer's address, or -1 with
    /// <paramref name="errno"/>.
    /// </summary>
    public static int Accept(int fd, out IPEndPoint? peer, out int errno)
    {
        var address = stackalloc byte[AddressCapacity];
        var length = AddressCapacity;
        var accepted = Accept4Native(fd, address, &length, SockCloexec | SockNonblock);
        errno = accepted < 0 ? Marshal.GetLastPInvokeError() : 0;
        peer = accepted < 0 ? null : EndPoint(new ReadOnlySpan<byte>(address, Math.Min(length, AddressCapacity)));
        return accepted;
    }

    /// <summary>getsockname(2) as an address, or null.</summary>
    public static IPEndPoint? LocalEndPoint(int fd)
    {
        var address = stackalloc byte[AddressCapacity];
        var length = AddressCapacity;
        return GetSockNameNative(fd, address, &length) == 0 ? EndPoint(new ReadOnlySpan<byte>(address, Math.Min(length, AddressCapacity))) : null;
    }

    /// <summary>shutdown(2): SHUT_RD 0, SHUT_WR 1, SHUT_RDWR 2, as SocketShutdown numbers them.</summary>
    public static void Shutdown(int fd, SocketShutdown how) => ShutdownNative(fd, (int)how);

    /// <summary>poll(2) with no wait: POLLIN, POLLHUP or POLLERR now.</summary>
    public static bool PollReadable(int fd)
    {
        // struct pollfd { int fd; short events; short revents; } as one 8-byte value: fd low, events (POLLIN) next.
        long entry = (uint)fd | (1L << 32);
        var ready = PollNative(&entry, 1, 0);
        return ready != 0; // ready, or a failed call: either way not a connection to send a request on
    }

    /// <summary>A sockaddr_in or sockaddr_in6 as an IPEndPoint (null for any other family).</summary>
    public static IPEndPoint? EndPoint(ReadOnlySpan<byte> address)
    {
        if (address.Length < 2) return null;
        var family = BitConverter.ToUInt16(address);
        if (address.Length < 4) return null;
        var port = (address[2] << 8) | address[3];
        return family switch
        {
            2 when address.Length >= 8 => new IPEndPoint(new IPAddress(address.Slice(4, 4)), port),
            10 when address.Length >= 28 => new IPEndPoint(new IPAddress(address.Slice(8, 16), BitConverter.ToUInt32(address.Slice(24, 4))), port),
            _ => null,
        };
    }

    /// <summary>What a failed call's errno becomes: a SocketException with .NET's code for it where there is one.</summary>
    public static SocketException Error(int errno) => new((int)(errno switch
    {
        104 => SocketError.ConnectionReset,
        32 => SocketError.Shutdown,
        110 => SocketError.TimedOut,
        111 => SocketError.ConnectionRefused,
        113 => SocketError.HostUnreachable,
        101 => SocketError.NetworkUnreachable,
        9 => SocketError.OperationAborted,
        103 => SocketError.ConnectionAborted,
        107 => SocketError.NotConnected,
        _ => SocketError.SocketError,
    }));
}
