using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Cutover.Platform;

/// <summary>
/// File descriptors (listening sockets, pipes) handed to another process over a connected AF_UNIX stream socket:
/// sendmsg(2)/recvmsg(2) with SCM_RIGHTS, which .NET has no managed API for. One message = a 4-byte big-endian
/// payload length with the descriptors attached to it, then the payload; the receiver reads the length alone with
/// recvmsg, so ancillary data never straddles two messages on the stream. Received descriptors are
/// close-on-exec (MSG_CMSG_CLOEXEC): a hook or an instance started in between must not inherit a listener, or the
/// port stays open after Cutover closes it. For the agent upgrade (issue 12: Agent/AgentTakeover).
/// </summary>
public static class FdPassing
{
    /// <summary>SCM_MAX_FD: the kernel refuses more descriptors in one message.</summary>
    public const int MaxDescriptors = 253;

    /// <summary>A payload bigger than this is refused on both sides: the handover says what it sends, it never streams data.</summary>
    public const int MaxPayload = 1 << 20;

    /// <summary>
    /// Sends <paramref name="payload"/> with duplicates of <paramref name="descriptors"/> (the kernel dups them into
    /// the receiver when it reads; ours stay open and ours to close).
    /// </summary>
    public static async Task SendAsync(Socket channel, ReadOnlyMemory<byte> payload, IReadOnlyList<int> descriptors, CancellationToken cancellationToken)
    {
        if (descriptors.Count > MaxDescriptors)
            throw new ArgumentException($"at most {MaxDescriptors} descriptors go in one message, not {descriptors.Count}", nameof(descriptors));
        if (payload.Length > MaxPayload)
            throw new ArgumentException($"a payload of {payload.Length} bytes is over the {MaxPayload} this channel carries", nameof(payload));
        var header = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(header, payload.Length);
        var fds = descriptors.ToArray();
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var sent = LibC.SendWithDescriptors(ChannelFd(channel), header, fds);
            if (sent == 4) break;
            if (sent > 0) throw new IOException($"sendmsg sent {sent} of 4 header bytes"); // unreachable for 4 bytes on AF_UNIX
            // Send buffer full (the socket is non-blocking under .NET): wait for room, in bounded slices so the token is heard.
            channel.Poll(TimeSpan.FromMilliseconds(100), SelectMode.SelectWrite);
        }
        if (payload.Length > 0) await channel.SendAsync(payload, SocketFlags.None, cancellationToken);
    }

    /// <summary>
    /// One message from <see cref="SendAsync"/>: the payload and the received descriptors, owned by the caller
    /// (close them, or wrap them in a SafeHandle that owns them). A truncated or oversized message closes what
    /// arrived and throws.
    /// </summary>
    public static async Task<ReceivedMessage> ReceiveAsync(Socket channel, CancellationToken cancellationToken)
    {
        var header = new byte[4];
        int[] descriptors;
        while (true)
        {
            var result = LibC.ReceiveWithDescriptors(ChannelFd(channel), header, MaxDescriptors);
            if (result is { } received)
            {
                descriptors = received.Descriptors;
                if (received.Bytes == 0)
                {
                    CloseAll(descriptors);
                    throw new EndOfStreamException("the other side closed the handover channel before sending");
                }
                if (received.Bytes < 4)
                {
                    // The rest of the header follows without ancillary data.
                    await ReadExactlyAsync(channel, header.AsMemory(received.Bytes), descriptors, cancellationToken);
                }
                break;
            }
            // Nothing yet: a zero-byte peek completes when data (with its descriptors) is there, and is cancellable.
            await channel.ReceiveAsync(Memory<byte>.Empty, SocketFlags.Peek, cancellationToken);
        }
        var length = BinaryPrimitives.ReadInt32BigEndian(header);
        if (length is < 0 or > MaxPayload)
        {
            CloseAll(descriptors);
            throw new InvalidDataException($"the handover message announces {length} bytes, over the {MaxPayload} allowed");
        }
        var payload = new byte[length];
        await ReadExactlyAsync(channel, payload, descriptors, cancellationToken);
        return new ReceivedMessage(payload, descriptors);
    }

    private static async Task ReadExactlyAsync(Socket channel, Memory<byte> buffer, int[] descriptorsToCloseOnFailure, CancellationToken cancellationToken)
    {
        try
        {
            while (buffer.Length > 0)
            {
                var n = await channel.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
                if (n == 0) throw new EndOfStreamException("the handover channel closed in the middle of a message");
                buffer = buffer[n..];
            }
        }
        catch
        {
            CloseAll(descriptorsToCloseOnFailure);
            throw;
        }
    }

    public static void CloseAll(IEnumerable<int> descriptors)
    {
        foreach (var fd in descriptors) LibC.Close(fd);
    }

    private static int ChannelFd(Socket channel)
    {
        if (channel.AddressFamily != AddressFamily.Unix)
            throw new ArgumentException($"descriptors travel only over a Unix domain socket, not {channel.AddressFamily}", nameof(channel));
        return (int)channel.SafeHandle.DangerousGetHandle();
    }
}

/// <summary>What <see cref="FdPassing.ReceiveAsync"/> read: the payload and the descriptors, in the order sent.</summary>
public sealed record ReceivedMessage(byte[] Payload, int[] Descriptors);

/// <summary>
/// sendmsg/recvmsg with SCM_RIGHTS. Part of <see cref="LibC"/> (the project's one P/Invoke class) but in this file,
/// beside the structs it needs, so the handover's native layout is read in one place and LibC.cs stays as it was.
/// Layouts are LP64 Linux (x86_64, arm64), as everywhere in LibC.
/// </summary>
internal static unsafe partial class LibC
{
    private const int SolSocket = 1, ScmRights = 1;
    private const int MsgCtrunc = 0x8, MsgDontwait = 0x40, MsgNosignal = 0x4000, MsgCmsgCloexec = 0x40000000;
    private const int EAgain = 11, EIntr = 4;

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the data, 8-byte aligned.
    private const int CmsgHeaderSize = 16;
    private static int CmsgSpace(int dataBytes) => CmsgHeaderSize + ((dataBytes + 7) & ~7);

    [LibraryImport("libc", EntryPoint = "sendmsg", SetLastError = true)]
    private static partial nint SendMsgNative(int fd, MsgHdr* message, int flags);

    [LibraryImport("libc", EntryPoint = "recvmsg", SetLastError = true)]
    private static partial nint RecvMsgNative(int fd, MsgHdr* message, int flags);

    /// <summary>sendmsg without blocking; the bytes sent, or 0 when the socket buffer is full.</summary>
    internal static int SendWithDescriptors(int socketFd, ReadOnlySpan<byte> data, int[] descriptors)
    {
        var controlLength = descriptors.Length == 0 ? 0 : CmsgSpace(descriptors.Length * sizeof(int));
        var control = stackalloc byte[Math.Max(controlLength, 1)];
        new Span<byte>(control, Math.Max(controlLength, 1)).Clear();
        if (descriptors.Length > 0)
        {
            *(nuint*)control = (nuint)(CmsgHeaderSize + descriptors.Length * sizeof(int));
            *(int*)(control + 8) = SolSocket;
            *(int*)(control + 12) = ScmRights;
            for (var i = 0; i < descriptors.Length; i++) ((int*)(control + CmsgHeaderSize))[i] = descriptors[i];
        }
        fixed (byte* bytes = data)
        {
            var iov = new IoVec { Base = bytes, Length = (nuint)data.Length };
            var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = controlLength == 0 ? null : control, ControlLength = (nuint)controlLength };
            while (true)
            {
                var sent = SendMsgNative(socketFd, &message, MsgDontwait | MsgNosignal);
                if (sent >= 0) return (int)sent;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EIntr) continue;
                if (errno == EAgain) return 0;
                throw Error("sendmsg");
            }
        }
    }

    /// <summary>
    /// recvmsg without blocking into <paramref name="data"/>; null when nothing is there yet. Descriptors arrive
    /// close-on-exec. MSG_CTRUNC (more descriptors than room) closes what did arrive and throws: the sender broke the protocol.
    /// </summary>
    internal static (int Bytes, int[] Descriptors)? ReceiveWithDescriptors(int socketFd, Span<byte> data, int maxDescriptors)
    {
        var controlLength = CmsgSpace(maxDescriptors * sizeof(int));
        var control = stackalloc byte[controlLength];
        new Span<byte>(control, controlLength).Clear();
        fixed (byte* bytes = data)
        {
            var iov = new IoVec { Base = bytes, Length = (nuint)data.Length };
            var message = new MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlLength };
            nint received;
            while (true)
            {
                received = RecvMsgNative(socketFd, &message, MsgDontwait | MsgCmsgCloexec);
                if (received >= 0) break;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EIntr) continue;
                if (errno == EAgain) return null;
                throw Error("recvmsg");
            }
            var descriptors = new List<int>();
            var offset = 0;
            while (offset + CmsgHeaderSize <= (int)message.ControlLength)
            {
                var length = (int)*(nuint*)(control + offset);
                if (length < CmsgHeaderSize) break;
                var level = *(int*)(control + offset + 8);
                var type = *(int*)(control + offset + 12);
                if (level == SolSocket && type == ScmRights)
                {
                    var count = (length - CmsgHeaderSize) / sizeof(int);
                    for (var i = 0; i < count; i++) descriptors.Add(((int*)(control + offset + CmsgHeaderSize))[i]);
                }
                offset += CmsgSpace(length - CmsgHeaderSize);
            }
            if ((message.Flags & MsgCtrunc) != 0)
            {
                foreach (var fd in descriptors) CloseNative(fd);
                throw new IOException($"recvmsg: more descriptors were sent than the {maxDescriptors} one message may carry");
            }
            return ((int)received, descriptors.ToArray());
        }
    }
}
