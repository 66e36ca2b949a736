using System.Runtime.InteropServices;

namespace Cutover.Platform.Epoll;

/// <summary>
/// One thread waiting on one epoll instance and running, inline, what each ready socket's waiting operation does next
/// (<see cref="EpollSocket"/>): the proxy's socket thread, as an nginx worker's event loop. Sockets are watched
/// edge-triggered and registered under a slot of this loop's table with a generation, so an event fetched for a socket
/// that has since been closed (and its slot reused) is recognised as stale and dropped.
/// </summary>
internal sealed unsafe class EpollLoop : IDisposable
{
    private const int BatchSize = 256;
    /// <summary>The wake eventfd's data: no slot has it (slots are below 2^31, generations start at 1).</summary>
    private const ulong WakeData = ulong.MaxValue;

    private readonly int _epoll;
    private readonly int _wake;
    private readonly Thread _thread;
    private readonly Action<Exception> _onError;
    private readonly Lock _table = new();
    private readonly Stack<int> _freeSlots = new();
    private EpollWatched?[] _sockets = new EpollWatched?[64];
    private int _usedSlots;
    private uint _lastGeneration;
    private volatile bool _stopping;
    private int _connections;

    /// <summary>The top descriptor numbers kept free of sockets: an accepted or new socket there is closed at once.</summary>
    public DescriptorReserve Descriptors { get; }

    /// <param name="onError">What an exception that escaped a socket's continuation is reported to (the loop goes on).</param>
    /// <param name="descriptors">The descriptor numbers this loop's sockets leave free (shared by a process's loops).</param>
    public EpollLoop(int index, Action<Exception> onError, DescriptorReserve descriptors)
    {
        Index = index;
        _onError = onError;
        Descriptors = descriptors;
        _epoll = EpollNative.CreateEpoll();
        _wake = EpollNative.CreateWakeEvent();
        var error = EpollNative.Control(_epoll, EpollNative.EpollCtlAdd, _wake, EpollNative.EpollIn, WakeData);
        if (error != 0) throw EpollNative.Error(error);
        var started = new ManualResetEventSlim();
        _thread = new Thread(() =>
        {
            ManagedThreadId = Environment.CurrentManagedThreadId;
            started.Set();
            Run();
        })
        { IsBackground = true, Name = $"cutover io {index}" };
        _thread.UnsafeStart();
        started.Wait();
        started.Dispose();
    }

    /// <summary>This loop's place among <see cref="EpollLoops"/>.</summary>
    public int Index { get; }

    /// <summary>The managed thread id of the loop's thread.</summary>
    public int ManagedThreadId { get; private set; }

    /// <summary>Sockets (client and upstream connections) this loop watches now: how busy it is, for placing new connections.</summary>
    public int Connections => Volatile.Read(ref _connections);

    /// <summary>True on the loop's own thread.</summary>
    public bool IsCurrentThread => Environment.CurrentManagedThreadId == ManagedThreadId;

    /// <summary>Watches <paramref name="socket"/>'s descriptor for <paramref name="events"/> (edge-triggered unless said otherwise).</summary>
    internal void Register(EpollWatched socket, int fd, uint events)
    {
        ulong data;
        lock (_table)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            if (!_freeSlots.TryPop(out var slot))
            {
                slot = _usedSlots++;
                if (slot == _sockets.Length)
                {
                    var larger = new EpollWatched?[_sockets.Length * 2];
                    _sockets.CopyTo(larger, 0);
                    // Published before the new socket is added to epoll: the loop reads the table after epoll_wait returns
                    // its event, so it sees this array and this slot.
                    Volatile.Write(ref _sockets, larger);
                }
            }
            if (++_lastGeneration == 0) _lastGeneration = 1;
            socket.Slot = slot;
            socket.Generation = _lastGeneration;
            _sockets[slot] = socket;
            if (socket is EpollSocket) _connections++;
            data = (uint)slot | ((ulong)_lastGeneration << 32);
        }
        var error = EpollNative.Control(_epoll, EpollNative.EpollCtlAdd, fd, events, data);
        if (error != 0)
        {
            Forget(socket);
            throw EpollNative.Error(error);
        }
    }

    /// <summary>Stops watching <paramref name="fd"/>, before its owner closes it; an event already fetched for it finds no socket.</summary>
    internal void Unregister(EpollWatched socket, int fd)
    {
        EpollNative.Control(_epoll, EpollNative.EpollCtlDel, fd, 0, 0);
        Forget(socket);
    }

    /// <summary>Frees <paramref name="socket"/>'s slot without epoll_ctl(DEL): for a descriptor about to be closed, which leaves the epoll set with its close.</summary>
    internal void Forget(EpollWatched socket)
    {
        lock (_table)
        {
            if (socket.Slot < 0 || !ReferenceEquals(_sockets[socket.Slot], socket)) return;
            _sockets[socket.Slot] = null;
            _freeSlots.Push(socket.Slot);
            socket.Slot = -1;
            if (socket is EpollSocket) _connections--;
        }
    }

    /// <summary>Sockets registered now (for tests: a closed one is forgotten).</summary>
    internal int RegisteredCount
    {
        get
        {
            lock (_table) return _usedSlots - _freeSlots.Count;
        }
    }

    private void Run()
    {
        var events = (byte*)NativeMemory.Alloc((nuint)(BatchSize * EpollNative.EventSize));
        try
        {
            while (!_stopping)
            {
                var count = EpollNative.EpollWait(_epoll, events, BatchSize, -1);
                if (count < 0)
                {
                    if (Marshal.GetLastPInvokeError() == EpollNative.EIntr) continue;
                    _onError(EpollNative.Error(Marshal.GetLastPInvokeError()));
                    return;
                }
                // The whole batch is run before the next wait: every socket ready now gets its turn, as in nginx's loop.
                for (var i = 0; i < count; i++)
                {
                    var entry = events + i * EpollNative.EventSize;
                    var ready = *(uint*)entry;
                    var data = *(ulong*)(entry + EpollNative.EventDataOffset);
                    if (data == WakeData) continue;
                    var slot = (int)(uint)data;
                    var table = Volatile.Read(ref _sockets);
                    var socket = (uint)slot < (uint)table.Length ? Volatile.Read(ref table[slot]) : null;
                    if (socket is null || socket.Generation != (uint)(data >> 32)) continue;
                    try
                    {
                        socket.OnEvents(ready);
                    }
                    catch (Exception e)
                    {
                        _onError(e);
                    }
                }
            }
        }
        finally
        {
            NativeMemory.Free(events);
        }
    }

    /// <summary>Ends the loop's thread; what is still registered is aborted (its waiting operations fail).</summary>
    public void Dispose()
    {
        EpollWatched?[] left;
        lock (_table)
        {
            if (_stopping) return;
            _stopping = true;
            left = (EpollWatched?[])_sockets.Clone();
        }
        EpollNative.Wake(_wake);
        if (!IsCurrentThread) _thread.Join();
        foreach (var watched in left) (watched as EpollSocket)?.Abort();
        LibC.Close(_wake);
        LibC.Close(_epoll);
    }
}
