using System.Net;
using System.Net.Sockets;
using Cutover.Platform;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;

namespace Cutover.Tests.Platform;

public class ListeningSocketHandoverTests
{
    [Fact]
    public async Task Every_listener_arrives_with_its_address_and_kind_and_accepts_connections()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var plain = Listening();
        using var tls = Listening();
        var (ours, theirs) = FdPassingTests.SocketPair();
        using (ours)
        using (theirs)
        {
            var sent = new[]
            {
                (new HandedListener((IPEndPoint)plain.LocalEndPoint!, ListenerKind.Plain), plain),
                (new HandedListener((IPEndPoint)tls.LocalEndPoint!, ListenerKind.Tls), tls),
            };
            await ListeningSocketHandover.SendAsync(ours, sent, timeout.Token);
            var received = await ListeningSocketHandover.ReceiveAsync(theirs, timeout.Token);
            try
            {
                Assert.Equal(sent.Select(s => s.Item1), received.Select(r => r.Listener));
                plain.Dispose(); // the old owner's copies go; the received ones keep the ports
                tls.Dispose();
                foreach (var listener in received)
                {
                    using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                    await client.ConnectAsync(listener.Listener.Address, timeout.Token);
                    using var accepted = await listener.Socket.AcceptAsync(timeout.Token);
                    Assert.Equal(client.LocalEndPoint, accepted.RemoteEndPoint);
                }
            }
            finally
            {
                foreach (var listener in received) listener.Socket.Dispose();
            }
        }
    }

    [Fact]
    public async Task Another_protocol_version_is_refused_and_nothing_it_sent_is_kept_open()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var listener = Listening();
        var address = (IPEndPoint)listener.LocalEndPoint!;
        var (ours, theirs) = FdPassingTests.SocketPair();
        using (ours)
        using (theirs)
        {
            await ListeningSocketHandover.SendAsync(ours, ListeningSocketHandover.ProtocolVersion + 1,
                [(new HandedListener(address, ListenerKind.Plain), listener)], timeout.Token);
            var e = await Assert.ThrowsAsync<HandoverException>(() => ListeningSocketHandover.ReceiveAsync(theirs, timeout.Token));
            Assert.Equal($"the old agent speaks handover version {ListeningSocketHandover.ProtocolVersion + 1}, this one {ListeningSocketHandover.ProtocolVersion}: upgrade by restarting instead", e.Message);
        }
        // The received copy was closed on refusal: once the sender closes its own, the port is free again.
        listener.Dispose();
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(async () => await client.ConnectAsync(address, timeout.Token));
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task A_socket_bound_elsewhere_than_described_is_refused()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var listener = Listening();
        var claimed = new IPEndPoint(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndPoint!).Port == 1 ? 2 : 1);
        var e = await RefusedAsync([(new HandedListener(claimed, ListenerKind.Tls), listener)], timeout.Token);
        Assert.Equal($"listener {claimed}: the descriptor sent for it is bound to {listener.LocalEndPoint}", e.Message);
    }

    [Fact]
    public async Task A_bound_socket_that_does_not_listen_is_refused()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var bound = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        bound.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var e = await RefusedAsync([(new HandedListener((IPEndPoint)bound.LocalEndPoint!, ListenerKind.Plain), bound)], timeout.Token);
        Assert.Equal($"listener {bound.LocalEndPoint}: the descriptor sent for it is not a listening TCP socket", e.Message);
    }

    [Fact]
    public async Task Kestrel_serves_on_a_handed_over_descriptor_after_the_old_owner_closes_its_copy_and_leaves_it_open_when_it_stops()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var old = Listening();
        var address = (IPEndPoint)old.LocalEndPoint!;
        var (ours, theirs) = FdPassingTests.SocketPair();
        IReadOnlyList<ReceivedListener> received;
        using (ours)
        using (theirs)
        {
            await ListeningSocketHandover.SendAsync(ours, [(new HandedListener(address, ListenerKind.Plain), old)], timeout.Token);
            received = await ListeningSocketHandover.ReceiveAsync(theirs, timeout.Token);
        }
        using var handedOver = Assert.Single(received).Socket;

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(options => options.ListenHandle((ulong)handedOver.SafeHandle.DangerousGetHandle()));
        await using var app = builder.Build();
        app.MapGet("/", () => "served by the new owner");
        await app.StartAsync(timeout.Token);
        old.Dispose();

        using var http = new HttpClient();
        Assert.Equal("served by the new owner", await http.GetStringAsync($"http://{address}/", timeout.Token));

        // Kestrel does not own a ListenHandle descriptor: stopping it leaves the socket open and listening, so the
        // agent must close it itself (and can hand it on again instead).
        await app.StopAsync(timeout.Token);
        Assert.Equal(1, (int)handedOver.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.AcceptConnection)!);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(address, timeout.Token); // queued on the still-listening socket, not refused
    }

    /// <summary>
    /// Why the handover passes the socket instead of binding a second one with SO_REUSEPORT (Traps 5): each
    /// SO_REUSEPORT socket has its own accept queue, and closing one resets the connections queued on it (unless
    /// net.ipv4.tcp_migrate_req=1, off by default). Passing the descriptor keeps one queue for both owners.
    /// </summary>
    [Fact]
    public async Task A_second_reuseport_socket_is_no_handover_closing_the_first_resets_the_connections_queued_on_it()
    {
        if (File.ReadAllText("/proc/sys/net/ipv4/tcp_migrate_req").Trim() != "0") return; // the kernel migrates them: no trap here
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var first = ReusePort(null);
        var address = (IPEndPoint)first.LocalEndPoint!;
        using var second = ReusePort(address);
        var clients = new List<Socket>();
        try
        {
            for (var i = 0; i < 32; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(address, timeout.Token); // completes from the queue, nobody accepted yet
            }
            first.Dispose();
            var reset = 0;
            foreach (var client in clients)
            {
                using var probe = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
                probe.CancelAfter(TimeSpan.FromMilliseconds(200));
                try
                {
                    var n = await client.ReceiveAsync(new byte[1], SocketFlags.None, probe.Token);
                    if (n == 0) reset++;
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
                {
                    reset++;
                }
                catch (OperationCanceledException)
                {
                    // still queued on the second socket: alive
                }
            }
            Assert.InRange(reset, 1, clients.Count - 1); // 32 connections spread over two queues by hash
        }
        finally
        {
            foreach (var client in clients) client.Dispose();
        }
    }

    private static Socket ReusePort(IPEndPoint? address)
    {
        const int SolSocket = 1, SoReusePort = 15;
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.SetRawSocketOption(SolSocket, SoReusePort, BitConverter.GetBytes(1));
        socket.Bind(address ?? new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen(64);
        return socket;
    }

    private static async Task<HandoverException> RefusedAsync(IReadOnlyList<(HandedListener, Socket)> listeners, CancellationToken cancellationToken)
    {
        var (ours, theirs) = FdPassingTests.SocketPair();
        using (ours)
        using (theirs)
        {
            await ListeningSocketHandover.SendAsync(ours, listeners, cancellationToken);
            return await Assert.ThrowsAsync<HandoverException>(() => ListeningSocketHandover.ReceiveAsync(theirs, cancellationToken));
        }
    }

    private static Socket Listening()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socket.Listen(64);
        return socket;
    }
}
