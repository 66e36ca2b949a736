using System.Net;
using System.Net.Sockets;

namespace Cutover.Platform.Epoll;

/// <summary>
/// One loop's accepting on a listening socket, as each nginx worker accepts: a descriptor of the listening socket of its
/// own (a duplicate: closing it stops this loop's accepting and nothing else), watched level-triggered and exclusively
/// (EPOLLEXCLUSIVE: a new connection wakes one waiting loop, not every one). Each readiness accepts one connection
/// (nginx without multi_accept), so the loop's other sockets get their turn between accepts; the connection starts on
/// this thread. A lasting failure (out of descriptors) pauses accepting for a moment instead of spinning on it.
/// </summary>
internal sealed class EpollAcceptor : EpollWatched, IDisposable
{
    private static readonly TimeSpan PauseAfterFailure = TimeSpan.FromMilliseconds(50);
    private const int ErrConnectionAborted = 103;

    private readonly EpollLoop _loop;
    private readonly SocketDescriptor _descriptor;
    private readonly int _fd;
    private readonly Action<EpollLoop, SocketDescriptor, IPEndPoint?> _accepted;
    private readonly Lock _gate = new();
    private Timer? _resume;
    private bool _disposed;

    /// <param name="listening">The listening socket (non-blocking); its descriptor is duplicated, never closed here.</param>
    /// <param name="accepted">Given each accepted connection (a non-blocking descriptor) and its peer, on the loop's thread.</param>
    public EpollAcceptor(EpollLoop loop, Socket listening, Action<EpollLoop, SocketDescriptor, IPEndPoint?> accepted)
    {
        _loop = loop;
        _accepted = accepted;
        _fd = LibC.DuplicateCloseOnExec((int)listening.SafeHandle.DangerousGetHandle());
        // Closed with a plain close(2): never a shutdown, which would stop the listening socket for every descriptor of it.
        _descriptor = new SocketDescriptor(_fd);
        try
        {
            loop.Register(this, _fd, EpollNative.EpollIn | EpollNative.EpollExclusive);
        }
        catch
        {
            _descriptor.Dispose();
            throw;
        }
    }

    internal override void OnEvents(uint events)
    {
        var added = false;
        try
        {
            _descriptor.DangerousAddRef(ref added);
            var fd = EpollNative.Accept(_fd, out var peer, out var errno);
            if (fd >= 0)
            {
                if (!_loop.Descriptors.IsReserved(fd))
                {
                    _accepted(_loop, new SocketDescriptor(fd), peer);
                    return;
                }
                // Nearly out of descriptors: the client is closed (as nginx does when its worker_connections run out)
                // and accepting pauses, so the rest queue rather than take what the runtime needs.
                LibC.Close(fd);
            }
            else if (errno is EpollNative.EAgain or EpollNative.EIntr or ErrConnectionAborted)
            {
                // Nothing queued (another loop took it), or a connection reset while queued: the next one may do.
                return;
            }
            Pause();
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (added) _descriptor.DangerousRelease();
        }
    }

    /// <summary>Out of descriptors (or the like): the listening socket stays readable, so stop watching it for a moment.</summary>
    private void Pause()
    {
        lock (_gate)
        {
            if (_disposed || Slot < 0) return;
            _loop.Unregister(this, _fd);
            _resume ??= new Timer(static state => ((EpollAcceptor)state!).Resume(), this, Timeout.Infinite, Timeout.Infinite);
            _resume.Change(PauseAfterFailure, Timeout.InfiniteTimeSpan);
        }
    }

    private void Resume()
    {
        lock (_gate)
        {
            if (_disposed || Slot >= 0) return;
            try
            {
                _loop.Register(this, _fd, EpollNative.EpollIn | EpollNative.EpollExclusive);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>Stops this loop's accepting: no accept runs once this returns except one already started, which completes.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _resume?.Dispose();
            if (Slot >= 0) _loop.Unregister(this, _fd);
        }
        _descriptor.Dispose();
    }
}
