using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Cutover.Platform;

/// <summary>
/// .NET's socket (epoll) threads, and a say in which one a socket gets. With inline socket completions
/// (<see cref="InlineSocketCompletions"/>) a socket's continuations run on the one epoll thread that watches it, which
/// .NET picks round-robin when the socket first waits; a proxied request whose client socket and upstream socket sit on
/// different threads wakes both threads for every request. When new clients and new upstream connections first wait in
/// turn (a burst of clients meeting an empty upstream pool), round-robin puts every client on one thread and every
/// upstream connection on the other, and then every request crosses (measured: bench/README.md, proxy). nginx has no
/// such crossing: a worker owns a connection and the upstream connections it uses. This gives the proxy the same: the
/// front end spreads clients over the threads itself, and an upstream connection is made on its client's thread.
/// .NET has no API for that; <see cref="Pin"/> sets the runtime's round-robin cursor (a private field of
/// System.Net.Sockets.SocketAsyncEngine, reached with UnsafeAccessor) just before a socket's first wait. A race with
/// another thread's registration only puts that one socket elsewhere, as before; a runtime without the field leaves
/// the proxy as it was (<see cref="DiscoverAsync"/> finds no threads and <see cref="Pin"/> does nothing).
/// </summary>
public sealed class SocketEngines
{
    /// <summary>No threads known: pinning does nothing (inline completions off, as in a test host, or a runtime that changed).</summary>
    public static SocketEngines Unknown { get; } = new([]);

    /// <summary>The managed thread id of each engine's thread, by engine index.</summary>
    private readonly int[] _threads;

    private SocketEngines(int[] threads) => _threads = threads;

    /// <summary>How many socket threads are known (0 when <see cref="Unknown"/>).</summary>
    public int Count => _threads.Length;

    /// <summary>The engine whose thread this is, or -1 (not a socket thread, or none known).</summary>
    public int OfCurrentThread()
    {
        var id = Environment.CurrentManagedThreadId;
        for (var i = 0; i < _threads.Length; i++)
            if (_threads[i] == id) return i;
        return -1;
    }

    /// <summary>The managed thread id of engine <paramref name="engine"/>'s thread, or 0 when unknown.</summary>
    public int ThreadOf(int engine) => (uint)engine < (uint)_threads.Length ? _threads[engine] : 0;

    /// <summary>
    /// The next socket to wait for the first time is watched by engine <paramref name="engine"/> (best effort: a
    /// registration on another thread in between takes the place). Does nothing when fewer than two threads are known.
    /// </summary>
    public void Pin(int engine)
    {
        if (_threads.Length < 2 || (uint)engine >= (uint)_threads.Length) return;
        // The runtime increments the cursor, then takes it modulo the engine count.
        Volatile.Write(ref RoundRobinCursor(null), engine - 1);
    }

    /// <summary>
    /// Finds each socket thread by pinning a loopback socket to it and seeing where its receive completes. Run it once,
    /// after inline completions are on and before the proxy starts, on a thread that is not a socket thread (it waits
    /// for each of them). Returns <see cref="Unknown"/> when completions are not inline or the runtime's cursor is not
    /// where this expects it.
    /// </summary>
    public static async Task<SocketEngines> DiscoverAsync(CancellationToken cancellationToken)
    {
        var found = Unknown;
        // Loopback answers in microseconds; whatever keeps it longer must not keep the agent from starting.
        using var bounded = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        bounded.CancelAfter(TimeSpan.FromSeconds(5));
        try
        {
            for (var attempt = 0; attempt < 3 && found == Unknown; attempt++)
                found = await TryDiscoverAsync(bounded.Token) ?? Unknown;
        }
        catch (Exception e) when (e is MissingFieldException or MissingMemberException or TypeLoadException or SocketException
                                      || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            found = Unknown;
        }
        // Off the socket thread the last probe resumed on, so the caller does not go on running there.
        await Task.Yield();
        return found;
    }

    /// <summary>One try: null when another registration got in between (the threads seen are not one per engine).</summary>
    private static async Task<SocketEngines?> TryDiscoverAsync(CancellationToken cancellationToken)
    {
        using var listening = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listening.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listening.Listen();
        var threads = new List<int>();
        // Pinning to index i lands on engine i modulo the count: the first thread seen again closes the circle.
        for (var engine = 0; engine <= Environment.ProcessorCount * 2 + 1; engine++)
        {
            var thread = await ThreadOfPinnedReceiveAsync(listening, engine, cancellationToken);
            if (thread == 0) return engine == 0 ? Unknown : null;
            if (threads.Count > 0 && thread == threads[0])
            {
                if (threads.Distinct().Count() != threads.Count) return null;
                // Once more around, to make sure nothing registered in between and shifted the circle.
                for (var again = 0; again < threads.Count; again++)
                    if (await ThreadOfPinnedReceiveAsync(listening, again, cancellationToken) != threads[again]) return null;
                return new SocketEngines([.. threads]);
            }
            threads.Add(thread);
        }
        return null;
    }

    /// <summary>The socket thread a fresh socket pinned to <paramref name="engine"/> completes a receive on; 0 when it completed elsewhere.</summary>
    private static async Task<int> ThreadOfPinnedReceiveAsync(Socket listening, int engine, CancellationToken cancellationToken)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listening.LocalEndPoint!);
        using var server = listening.Accept();
        var buffer = new byte[1];
        Volatile.Write(ref RoundRobinCursor(null), engine - 1);
        // Nothing to read yet: the receive waits, which registers the socket with the pinned engine.
        var received = ReceiveOnSocketThreadAsync(server, buffer, cancellationToken);
        client.Send(buffer);
        return await received;
    }

    private static async Task<int> ReceiveOnSocketThreadAsync(Socket server, byte[] buffer, CancellationToken cancellationToken)
    {
        await server.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        // With inline completions the continuation runs on the epoll thread itself, whose name .NET sets.
        return Thread.CurrentThread.Name == ".NET Sockets" ? Environment.CurrentManagedThreadId : 0;
    }

    /// <summary>System.Net.Sockets.SocketAsyncEngine.s_allocateFromEngine: the round-robin cursor, incremented at each registration.</summary>
    [UnsafeAccessor(UnsafeAccessorKind.StaticField, Name = "s_allocateFromEngine")]
    private static extern ref int RoundRobinCursor([UnsafeAccessorType("System.Net.Sockets.SocketAsyncEngine, System.Net.Sockets")] object? engine);
}
