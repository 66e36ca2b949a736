using System.Net;
using System.Net.Sockets;
using Cutover.Platform.Epoll;
using Cutover.Tests.Support;

namespace Cutover.Tests.Platform;

/// <summary>
/// The proxy's own socket threads (Platform/Epoll) on real loopback TCP connections: the readiness they remember, the
/// waits they park and resume, and the edges where that can go wrong (a disposal or a cancellation racing an arrival,
/// a full send buffer, a refused connect, a slot reused after a close).
/// </summary>
public sealed class EpollSocketTests : IDisposable
{
    private readonly EpollLoops _loops = new(e => throw e, count: 2);
    private readonly Socket _listening = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly CancellationTokenSource _timeout = new(TimeSpan.FromSeconds(30));

    public EpollSocketTests()
    {
        _listening.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listening.Listen(64);
    }

    public void Dispose()
    {
        _listening.Dispose();
        _loops.Dispose();
        _timeout.Dispose();
    }

    /// <summary>A connected pair: a plain client socket and the accepted side watched by a loop.</summary>
    private async Task<(Socket Client, EpollSocket Server)> PairAsync(int loop = 0)
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await client.ConnectAsync(_listening.LocalEndPoint!, _timeout.Token);
        var accepted = await _listening.AcceptAsync(_timeout.Token);
        return (client, EpollSocket.Connected(accepted, _loops[loop]));
    }

    /// <summary>
    /// The point of the loops: a receive that got less than it asked for has emptied the socket, so the next receive
    /// waits for epoll without a recv(2) that can only fail; it makes its one call when data comes.
    /// </summary>
    [Fact]
    public async Task A_receive_after_a_short_read_waits_without_a_call_and_makes_one_when_data_comes()
    {
        var (client, server) = await PairAsync();
        using (client)
        using (server)
        {
            await client.SendAsync("abc"u8.ToArray(), _timeout.Token);
            // Their edge reaches the loop before the first receive: one that came after it (it may, on a busy machine)
            // would rightly make the next receive try once more, the socket not being known empty any more.
            await Task.Delay(200, _timeout.Token);
            var buffer = new byte[4096];
            var first = await server.ReceiveAsync(buffer, _timeout.Token);
            Assert.Equal(3, first);
            var callsAfterShortRead = server.Calls;

            var waiting = server.ReceiveAsync(buffer, _timeout.Token);
            Assert.False(waiting.IsCompleted);
            Assert.Equal(callsAfterShortRead, server.Calls); // no EAGAIN recv(2) before waiting

            await client.SendAsync("de"u8.ToArray(), _timeout.Token);
            Assert.Equal(2, await waiting.AsTask().WaitAsync(_timeout.Token));
            Assert.Equal(callsAfterShortRead + 1, server.Calls);
            Assert.Equal("de", System.Text.Encoding.ASCII.GetString(buffer, 0, 2));
        }
    }

    /// <summary>A receive that filled its buffer has not emptied the socket: the next one tries (and gets the rest).</summary>
    [Fact]
    public async Task A_receive_that_filled_its_buffer_reads_the_rest_at_once()
    {
        var (client, server) = await PairAsync();
        using (client)
        using (server)
        {
            await client.SendAsync("0123456789"u8.ToArray(), _timeout.Token);
            var buffer = new byte[4];
            var got = new List<byte>();
            while (got.Count < 10)
            {
                var n = await server.ReceiveAsync(buffer, _timeout.Token);
                Assert.True(n > 0);
                got.AddRange(buffer.AsSpan(0, n).ToArray());
            }
            Assert.Equal("0123456789", System.Text.Encoding.ASCII.GetString(got.ToArray()));
        }
    }

    /// <summary>The peer's close ends a waiting receive with 0, on the loop's thread; so does a wait for readability.</summary>
    [Fact]
    public async Task The_peers_close_ends_a_waiting_receive_with_zero_on_the_loops_thread()
    {
        var (client, server) = await PairAsync(loop: 1);
        using (server)
        {
            await client.SendAsync("x"u8.ToArray(), _timeout.Token);
            // Its edge reaches the loop first, so the short read below leaves the socket known empty.
            await Task.Delay(200, _timeout.Token);
            Assert.Equal(1, await server.ReceiveAsync(new byte[16], _timeout.Token));
            var receiving = WaitThenReceiveAsync(server);
            Assert.False(receiving.IsCompleted);
            client.Dispose();
            var (waitedOn, received, thread) = await receiving.WaitAsync(_timeout.Token);
            Assert.Equal(_loops[1].ManagedThreadId, waitedOn);
            Assert.Equal(0, received);
            Assert.Equal(_loops[1].ManagedThreadId, thread);
        }

        // One operation at a time per side (the contract): the wait, then the receive that finds the end.
        static async Task<(int, int, int)> WaitThenReceiveAsync(EpollSocket socket)
        {
            await socket.WaitReadableAsync();
            var waitedOn = Environment.CurrentManagedThreadId;
            var n = await socket.ReceiveAsync(new byte[16]);
            return (waitedOn, n, Environment.CurrentManagedThreadId);
        }
    }

    /// <summary>
    /// Data and the peer's end that reach the loop as one edge (both arrived before it looked, as on a busy machine): the
    /// short read of the data leaves the end to read, and no edge will come for it. The next receive must get it (0) at
    /// once; the same for a reset. Before the Ended bit it waited forever: the front end kept connections its clients had
    /// left (PlainFrontEndTests, under load).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Data_and_the_peers_end_in_one_edge_a_short_read_then_the_end_at_once(bool reset)
    {
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await client.ConnectAsync(_listening.LocalEndPoint!, _timeout.Token);
        using var accepted = await _listening.AcceptAsync(_timeout.Token);
        await client.SendAsync("GET / HT"u8.ToArray(), _timeout.Token);
        if (reset) client.LingerState = new LingerOption(true, 0);
        else client.Shutdown(SocketShutdown.Send);
        if (reset) client.Dispose();
        // Both are here before the loop watches the socket: its first edge carries them together.
        await Wait.UntilAsync(() => accepted.Poll(0, SelectMode.SelectRead) && (reset || accepted.Available == 8), TimeSpan.FromSeconds(5), "the data here");
        await Task.Delay(50, _timeout.Token);
        using var server = EpollSocket.Connected(accepted, _loops[0]);
        await Wait.UntilAsync(() => server.ReadEdges >= 1, TimeSpan.FromSeconds(5), "the loop's first edge");

        var buffer = new byte[4096];
        try
        {
            Assert.Equal(8, await server.ReceiveAsync(buffer, _timeout.Token));
        }
        catch (SocketException e) when (reset && e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return; // a reset may discard what was unread: then the first receive is the error, at once
        }
        var next = server.ReceiveAsync(buffer, _timeout.Token).AsTask();
        try
        {
            Assert.Equal(0, await next.WaitAsync(TimeSpan.FromSeconds(5), _timeout.Token));
        }
        catch (SocketException e) when (reset && e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
        Assert.Contains("ended", server.ToString());
        if (!reset) client.Dispose();
    }

    /// <summary>Disposing fails what waits (no hang), closes the socket, and frees the loop's slot.</summary>
    [Fact]
    public async Task Dispose_fails_a_waiting_receive_closes_the_socket_and_frees_the_slot()
    {
        var before = _loops[0].RegisteredCount;
        var (client, server) = await PairAsync();
        using (client)
        {
            Assert.Equal(before + 1, _loops[0].RegisteredCount);
            var waiting = server.ReceiveAsync(new byte[16], _timeout.Token);
            Assert.False(waiting.IsCompleted);
            server.Dispose();
            var error = await Assert.ThrowsAsync<SocketException>(() => waiting.AsTask().WaitAsync(_timeout.Token));
            Assert.Equal(SocketError.OperationAborted, error.SocketErrorCode);
            Assert.True(server.Handle.IsClosed);
            Assert.Equal(before, _loops[0].RegisteredCount);
            await Assert.ThrowsAsync<SocketException>(() => server.ReceiveAsync(new byte[16]).AsTask());
            // The peer sees the close.
            Assert.Equal(0, await client.ReceiveAsync(new byte[16], _timeout.Token));
        }
    }

    /// <summary>
    /// A slot reused after a close gets a new generation: an event fetched for the closed socket cannot reach the new one.
    /// </summary>
    [Fact]
    public async Task A_reused_slot_has_a_new_generation()
    {
        var (client1, first) = await PairAsync();
        var slot = first.Slot;
        var generation = first.Generation;
        first.Dispose();
        client1.Dispose();
        var (client2, second) = await PairAsync();
        using (client2)
        using (second)
        {
            Assert.Equal(slot, second.Slot);
            Assert.NotEqual(generation, second.Generation);
            await client2.SendAsync("ok"u8.ToArray(), _timeout.Token);
            Assert.Equal(2, await second.ReceiveAsync(new byte[16], _timeout.Token));
        }
    }

    /// <summary>
    /// Cancellation racing arrival, many times: each receive ends exactly once, either with data or cancelled, and a
    /// cancelled receive loses no byte (the next receive gets everything that was sent). The next receive's token is
    /// never cancelled by the previous one's late callback.
    /// </summary>
    [Fact]
    public async Task Cancellation_racing_data_never_loses_a_byte_nor_cancels_the_next_receive()
    {
        var (client, server) = await PairAsync();
        using (client)
        using (server)
        {
            var buffer = new byte[64];
            long sent = 0, received = 0;
            var random = new Random(7);
            for (var i = 0; i < 300; i++)
            {
                using var cancel = new CancellationTokenSource();
                var waiting = server.ReceiveAsync(buffer, cancel.Token);
                var sendFirst = random.Next(2) == 0;
                if (sendFirst) { await client.SendAsync(new byte[] { 1 }); sent++; }
                cancel.Cancel();
                if (!sendFirst) { await client.SendAsync(new byte[] { 1 }); sent++; }
                try
                {
                    received += await waiting.AsTask().WaitAsync(_timeout.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
            // Whatever the cancelled receives did not take is still there, and a receive with a live token is not cancelled.
            while (received < sent) received += await server.ReceiveAsync(buffer, _timeout.Token);
            Assert.Equal(sent, received);
        }
    }

    /// <summary>A send larger than the socket's buffers waits for room (the peer reading) and sends every byte, in order.</summary>
    [Fact]
    public async Task A_send_larger_than_the_socket_buffers_waits_for_room_and_sends_every_byte()
    {
        var (client, server) = await PairAsync();
        using (client)
        using (server)
        {
            var data = new byte[16 * 1024 * 1024];
            new Random(3).NextBytes(data);
            var sending = server.SendAsync(data, _timeout.Token);
            Assert.False(sending.IsCompleted); // 16 MiB does not fit loopback's buffers
            var got = new byte[data.Length];
            var total = 0;
            while (total < got.Length) total += await client.ReceiveAsync(got.AsMemory(total), _timeout.Token);
            await sending.AsTask().WaitAsync(_timeout.Token);
            Assert.True(data.AsSpan().SequenceEqual(got));
        }
    }

    /// <summary>A connect made by a loop: to a listening port it connects; to a closed one it fails as refused, leaving nothing registered.</summary>
    [Fact]
    public async Task Connect_succeeds_to_a_listener_and_fails_refused_to_a_closed_port_leaving_nothing_registered()
    {
        var before = _loops[1].RegisteredCount;
        using (var connected = await EpollSocket.ConnectAsync((IPEndPoint)_listening.LocalEndPoint!, _loops[1], _timeout.Token))
        {
            using var accepted = await _listening.AcceptAsync(_timeout.Token);
            await connected.SendAsync("hi"u8.ToArray(), _timeout.Token);
            var buffer = new byte[2];
            Assert.Equal(2, await accepted.ReceiveAsync(buffer, _timeout.Token));
        }
        var closedPort = Cutover.Platform.LoopbackPort.Free();
        var error = await Assert.ThrowsAsync<SocketException>(() => EpollSocket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, closedPort), _loops[1], _timeout.Token).AsTask());
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
        Assert.Equal(before, _loops[1].RegisteredCount);
    }

    /// <summary>
    /// A connection a loop accepted (accept4, a descriptor of our own) closes with a FIN: the client reads the end and
    /// may still write once, as after nginx's close. (Closed as a SafeSocketHandle on its own, it was reset instead, SO_LINGER
    /// 0: a keep-alive client's next request met a broken pipe when the proxy closed it, caught by ListenerHandoverTests.)
    /// </summary>
    [Fact]
    public async Task A_connection_a_loop_accepted_closes_with_a_fin_not_a_reset()
    {
        var accepted = new TaskCompletionSource<(EpollLoop, SocketDescriptor, IPEndPoint?)>(TaskCreationOptions.RunContinuationsAsynchronously);
        _listening.Blocking = false;
        using var acceptor = new EpollAcceptor(_loops[0], _listening, (loop, socket, peer) => accepted.TrySetResult((loop, socket, peer)));
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(_listening.LocalEndPoint!, _timeout.Token);
        var (loop, descriptor, peer) = await accepted.Task.WaitAsync(_timeout.Token);
        Assert.Same(_loops[0], loop);
        Assert.Equal(client.LocalEndPoint, peer);
        var server = EpollSocket.Accepted(descriptor, loop);
        Assert.Equal(_listening.LocalEndPoint, server.LocalEndPoint());
        await server.SendAsync("bye"u8.ToArray(), _timeout.Token);
        server.Dispose();
        var buffer = new byte[16];
        Assert.Equal(3, await client.ReceiveAsync(buffer, _timeout.Token));
        Assert.Equal(0, await client.ReceiveAsync(buffer, _timeout.Token)); // the end, not ECONNRESET
        await client.SendAsync("late"u8.ToArray(), _timeout.Token); // a FIN leaves the client's side open
    }

    /// <summary>
    /// The top descriptor numbers are kept for the rest of the process (the runtime fails fast without them): a
    /// connection accepted there is closed at once and accepting pauses; a new upstream socket there fails as EMFILE.
    /// Here a reserve that holds every number (a soft limit of 0) stands for a process at its limit.
    /// </summary>
    [Fact]
    public async Task Sockets_that_land_in_the_reserved_descriptors_are_closed_at_once_accepted_or_connecting()
    {
        using var full = new EpollLoops(e => throw e, count: 1, descriptors: new DescriptorReserve(() => 0));
        var accepted = 0;
        _listening.Blocking = false;
        using (new EpollAcceptor(full[0], _listening, (_, socket, _) => { Interlocked.Increment(ref accepted); socket.Dispose(); }))
        {
            using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(_listening.LocalEndPoint!, _timeout.Token);
            Assert.Equal(0, await client.ReceiveAsync(new byte[16], _timeout.Token)); // closed by the loop, unseen by the code
        }
        Assert.Equal(0, accepted);

        var failed = await Assert.ThrowsAsync<SocketException>(async () => await EpollSocket.ConnectAsync((IPEndPoint)_listening.LocalEndPoint!, full[0], _timeout.Token));
        Assert.Equal(SocketError.TooManyOpenSockets, failed.SocketErrorCode);
        Assert.Equal(0, full[0].Connections);
    }

    [Fact]
    public async Task The_reserve_is_the_top_thirty_second_of_the_limit_and_follows_a_changed_limit_within_a_second()
    {
        long limit = 1024;
        var reserve = new DescriptorReserve(() => limit);
        Assert.False(reserve.IsReserved(991));
        Assert.True(reserve.IsReserved(992)); // 1024 - 1024/32
        limit = 200; // a reserve of at least 16: 184 and up
        Assert.False(reserve.IsReserved(500)); // not asked again yet
        await Task.Delay(1100, _timeout.Token);
        Assert.False(reserve.IsReserved(183));
        Assert.True(reserve.IsReserved(184));
        Assert.Equal(256, DescriptorReserve.Size(524288));
    }
}
