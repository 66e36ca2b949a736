using System.Runtime.InteropServices;

namespace Cutover.Platform.Epoll;

/// <summary>
/// A socket descriptor of our own (one accept4(2) made, or a duplicate of a listening socket), closed with a plain
/// close(2) once its last reference is released. Not a SafeSocketHandle: disposed on its own (without a Socket), that
/// one closes abortively (SO_LINGER 0), resetting the connection, so a client's request in flight met a broken pipe
/// where a close after the response (a FIN) is what nginx and Kestrel give. The reference count keeps a close from
/// overtaking a recv(2) or send(2) in flight on another thread.
/// </summary>
internal sealed class SocketDescriptor : SafeHandle
{
    public SocketDescriptor(int fd) : base(new IntPtr(-1), ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle == new IntPtr(-1);

    protected override bool ReleaseHandle() => LibC.Close((int)handle);
}
