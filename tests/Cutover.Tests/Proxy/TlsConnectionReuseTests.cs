using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Cutover.Config;
using Cutover.Proxy;
using Cutover.Proxy.Http1;
using Cutover.Proxy.OpenSsl;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Proxy;

/// <summary>
/// What a new TLS connection no longer pays for (issue 18's speed goal; bench/README.md, TLS termination): the fast
/// path's parsers and buffers come from the listener's pool instead of being made per connection, and close_notify
/// leaves with the last response instead of in a send of its own. Reuse must carry nothing from one connection into
/// the next, and a lease can end only once.
/// </summary>
public class TlsConnectionReuseTests
{
    /// <summary>
    /// On one real TLS listener, connections one after another on the same pooled buffers: a trusted peer's large head
    /// (past a pipe segment, so the head is copied, with its own X-Forwarded-For and a field of its own) and Connection:
    /// close; a client that sends half a head and leaves; then an untrusted peer's small request. The backend gets each
    /// forwarded request exactly as that connection sent it (no field, address or path of an earlier one), each client
    /// gets its own answer and close_notify after its last response, and the pool holds one set of buffers at the end.
    /// </summary>
    [Fact]
    public async Task Connections_after_one_another_reuse_the_fast_paths_buffers_and_nothing_of_an_earlier_connection_reaches_a_later_one()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var dir = new TempDir();
        await using var backend = new RawHttpBackend();
        var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? app = null;
        try
        {
            PemCertificate.Write(dir.Combine("site.pem"), dir.Combine("site.key"), "a.test", "a.test");
            app = await ProxyServer.StartAsync("site", new ProxyConfig
            {
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                Hosts = ["a.test"],
                TrustedProxies = [IPNetwork.Parse("127.0.0.2/32")],
                Tls = new TlsConfig { Listen = new IPEndPoint(IPAddress.Loopback, 0), CertFile = dir.Combine("site.pem"), KeyFile = dir.Combine("site.key") },
            }, listeners, NullLoggerFactory.Instance, timeout.Token);
            app.Pool.Add(new Backend("raw", backend.Endpoint));
            var listener = listeners.TlsListenerOf(app);
            var pool = listener.FastPathBuffers;

            // A trusted peer, a head of about 6 KiB: the pipe's first segment does not hold it whole.
            var large = "GET /first?x=1 HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 203.0.113.9\r\nX-First: yes\r\n" +
                string.Concat(Enumerable.Range(0, 60).Select(i => $"X-Filler-{i}: {new string('f', 80)}\r\n")) + "Connection: close\r\n\r\n";
            var before = backend.Now();
            var (first, firstClosedCleanly) = await RequestAsync(listener.Bound, IPAddress.Parse("127.0.0.2"), large, timeout.Token);
            Assert.StartsWith("HTTP/1.1 200 ", first);
            Assert.Contains("\r\nConnection: close\r\n", first);
            Assert.True(firstClosedCleanly, "close_notify after the last response");
            await Wait.UntilAsync(() => listener.OpenTlsConnections == 0, TimeSpan.FromSeconds(10), "the first connection closed", cancellationToken: timeout.Token);
            Assert.Equal(1, pool.IdleCount);

            // Half a head, then the client leaves: the parser saw a field the next connection must not get.
            await LeaveMidHeadAsync(listener.Bound, "GET /half HTTP/1.1\r\nHost: a.test\r\nX-Leftover: 1\r\nX-Forwarded-For: 198.51.100.7\r\n", timeout.Token);
            await Wait.UntilAsync(() => listener.OpenTlsConnections == 0, TimeSpan.FromSeconds(10), "the leaving connection closed", cancellationToken: timeout.Token);
            Assert.Equal(1, pool.IdleCount);

            // An untrusted peer, a small head: its own address only, nothing of the two before.
            var (second, secondClosedCleanly) = await RequestAsync(listener.Bound, IPAddress.Parse("127.0.0.3"), "GET /second HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n", timeout.Token);
            Assert.StartsWith("HTTP/1.1 200 ", second);
            Assert.True(secondClosedCleanly, "close_notify after the last response");
            await Wait.UntilAsync(() => listener.OpenTlsConnections == 0, TimeSpan.FromSeconds(10), "the second connection closed", cancellationToken: timeout.Token);

            var forwarded = backend.RequestsSince(before);
            Assert.Equal(2, forwarded.Count);
            Assert.Equal("/first?x=1", forwarded[0].Target);
            Assert.Equal(["203.0.113.9, 127.0.0.2"], forwarded[0].Values("X-Forwarded-For"));
            Assert.Equal(["yes"], forwarded[0].Values("X-First"));
            Assert.Equal(60, forwarded[0].Headers.Count(h => h.Name.StartsWith("X-Filler-", StringComparison.Ordinal)));
            Assert.Equal("/second", forwarded[1].Target);
            Assert.Equal(["127.0.0.3"], forwarded[1].Values("X-Forwarded-For"));
            Assert.Equal(["https"], forwarded[1].Values("X-Forwarded-Proto"));
            Assert.Equal(["a.test"], forwarded[1].Values("Host"));
            Assert.Empty(forwarded[1].Values("X-First"));
            Assert.Empty(forwarded[1].Values("X-Leftover"));
            Assert.DoesNotContain(forwarded[1].Headers, h => h.Name.StartsWith("X-Filler-", StringComparison.Ordinal));
            // One set of buffers served all three connections, one after another.
            Assert.Equal(1, pool.IdleCount);
        }
        finally
        {
            if (app is not null) await app.DisposeAsync();
            await listeners.DisposeAsync();
        }
    }

    /// <summary>A lease ends once: a second return of it, or a late one after the buffers were lent again, is refused.</summary>
    [Fact]
    public void A_lease_of_the_fast_paths_buffers_is_returned_once_and_a_stale_return_never_lends_them_twice()
    {
        var pool = new FastPathBuffersPool(4);
        var first = pool.Rent();
        var firstLease = first.Lease;
        Assert.True(pool.Return(first, firstLease));
        Assert.False(pool.Return(first, firstLease));
        Assert.Equal(1, pool.IdleCount);

        // Lent again; the earlier holder's late return must not put them back while the new one holds them.
        var again = pool.Rent();
        Assert.Same(first, again);
        Assert.False(pool.Return(again, firstLease));
        Assert.Equal(0, pool.IdleCount);
        Assert.NotSame(again, pool.Rent());
        Assert.True(pool.Return(again, again.Lease));
        Assert.Equal(1, pool.IdleCount);

        // A buffer grown for one huge head is not kept for the next connection.
        var grown = pool.Rent();
        grown.UpstreamHead = new byte[FastPathBuffers.KeptBufferLimit * 4];
        Assert.True(pool.Return(grown, grown.Lease));
        Assert.Equal(FastPathBuffers.UpstreamHeadSize, pool.Rent().UpstreamHead.Length);

        // A full pool keeps no more (the rest are the GC's), and still refuses a second return.
        var many = Enumerable.Range(0, 6).Select(_ => pool.Rent()).ToList();
        foreach (var buffers in many) Assert.True(pool.Return(buffers, buffers.Lease));
        Assert.Equal(4, pool.IdleCount);
        Assert.False(pool.Return(many[5], many[5].Lease));
    }

    /// <summary>
    /// close_notify is written with the flush that follows <see cref="OpenSslStream.CloseNotifyWithNextFlush"/>: the client
    /// reads the data and then the end of the TLS stream while the server has neither shut down nor closed anything; a
    /// write after it is refused.
    /// </summary>
    [Fact]
    public async Task Close_notify_leaves_with_the_last_flush_not_in_a_send_of_its_own()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var dir = new TempDir();
        PemCertificate.Write(dir.Combine("site.pem"), dir.Combine("site.key"), "a.test", "a.test");
        using var certificate = X509Certificate2.CreateFromPemFile(dir.Combine("site.pem"), dir.Combine("site.key"));
        var context = SslStreamCertificateContext.Create(certificate, null);
        using var server = new OpenSslServer(_ => context, [SslApplicationProtocol.Http11]);
        using var listening = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listening.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listening.Listen();
        using var client = new TcpClient();
        await client.ConnectAsync((IPEndPoint)listening.LocalEndPoint!, timeout.Token);
        using var loops = new Cutover.Platform.Epoll.EpollLoops(e => throw e, count: 1);
        using var accepted = Cutover.Platform.Epoll.EpollSocket.Connected(await listening.AcceptAsync(timeout.Token), loops.Next());
        var tls = new OpenSslStream(accepted, server);
        try
        {
            await using var clientTls = new SslStream(client.GetStream());
            var clientHandshake = clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "a.test",
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            }, timeout.Token);
            await tls.HandshakeAsync(timeout.Token);
            await clientHandshake;

            tls.CloseNotifyWithNextFlush();
            await tls.WriteAsync("the last response"u8.ToArray(), timeout.Token);
            await tls.FlushAsync(timeout.Token);

            var received = new MemoryStream();
            var buffer = new byte[256];
            int read;
            while ((read = await clientTls.ReadAsync(buffer, timeout.Token)) > 0) received.Write(buffer, 0, read);
            Assert.Equal("the last response", Encoding.ASCII.GetString(received.ToArray()));

            // The connection's own close after it has nothing left to do, and nothing may be written after close_notify.
            await tls.ShutdownAsync(timeout.Token);
            await Assert.ThrowsAsync<IOException>(async () => await tls.WriteAsync("more"u8.ToArray(), timeout.Token));
        }
        finally
        {
            // The SSL object before the socket: OpenSSL holds the descriptor's number.
            await tls.DisposeAsync();
        }
    }

    /// <summary>
    /// Nagle stays off on every accepted connection, plain and TLS, and comes from the listening socket (Linux copies
    /// TCP_NODELAY to the sockets it accepts) instead of a setsockopt(2) per connection.
    /// </summary>
    [Fact]
    public async Task Accepted_connections_have_nagle_off_from_the_listening_socket()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var dir = new TempDir();
        var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? app = null;
        try
        {
            PemCertificate.Write(dir.Combine("site.pem"), dir.Combine("site.key"), "a.test", "a.test");
            app = await ProxyServer.StartAsync("site", new ProxyConfig
            {
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                Hosts = ["a.test"],
                Tls = new TlsConfig { Listen = new IPEndPoint(IPAddress.Loopback, 0), CertFile = dir.Combine("site.pem"), KeyFile = dir.Combine("site.key") },
            }, listeners, NullLoggerFactory.Instance, timeout.Token);
            var tlsListener = listeners.TlsListenerOf(app);
            var plainListener = listeners.PlainListenerOf(app);
            Assert.True(tlsListener.ListeningSocket.NoDelay);
            Assert.True(plainListener.ListeningSocket.NoDelay);

            using var tlsClient = new TcpClient();
            await tlsClient.ConnectAsync(tlsListener.Bound, timeout.Token);
            using var plainClient = new TcpClient();
            await plainClient.ConnectAsync(plainListener.Bound, timeout.Token);
            await Wait.UntilAsync(() => tlsListener.OpenTlsConnections == 1 && plainListener.OpenPlainConnections == 1, TimeSpan.FromSeconds(10), "both connections accepted", cancellationToken: timeout.Token);
            // The server's side of each connection, in this very process: TCP_NODELAY as the kernel has it.
            Assert.True(ServerSideNoDelay(tlsListener.Bound.Port, ((IPEndPoint)tlsClient.Client.LocalEndPoint!).Port));
            Assert.True(ServerSideNoDelay(plainListener.Bound.Port, ((IPEndPoint)plainClient.Client.LocalEndPoint!).Port));
        }
        finally
        {
            if (app is not null) await app.DisposeAsync();
            await listeners.DisposeAsync();
        }
    }

    /// <summary>
    /// TCP_NODELAY of this process's socket whose local port is <paramref name="localPort"/> and peer's port
    /// <paramref name="peerPort"/>: its inode from /proc/net/tcp, its descriptor from /proc/self/fd, then getsockopt(2).
    /// </summary>
    private static bool ServerSideNoDelay(int localPort, int peerPort)
    {
        var inode = File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => Convert.ToInt32(f[1].Split(':')[1], 16) == localPort && Convert.ToInt32(f[2].Split(':')[1], 16) == peerPort)
            .Select(f => f[9]).Single();
        var fd = new DirectoryInfo("/proc/self/fd").EnumerateFileSystemInfos()
            .Where(f => f.LinkTarget == $"socket:[{inode}]").Select(f => int.Parse(f.Name)).Single();
        var value = 0;
        var length = sizeof(int);
        Assert.Equal(0, GetSockOpt(fd, 6 /* IPPROTO_TCP */, 1 /* TCP_NODELAY */, ref value, ref length));
        return value != 0;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    private static extern int GetSockOpt(int fd, int level, int name, ref int value, ref int length);

    /// <summary>One request on a new TLS connection from <paramref name="from"/>; the response and whether the server ended TLS with close_notify.</summary>
    private static async Task<(string Response, bool ClosedCleanly)> RequestAsync(IPEndPoint proxy, IPAddress from, string request, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(from, 0));
        await socket.ConnectAsync(proxy, cancellationToken);
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "a.test",
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }, cancellationToken);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(request), cancellationToken);
        var received = new MemoryStream();
        var buffer = new byte[4096];
        try
        {
            int read;
            // SslStream returns 0 only for close_notify; a close without it is an IOException.
            while ((read = await tls.ReadAsync(buffer, cancellationToken)) > 0) received.Write(buffer, 0, read);
            return (Encoding.ASCII.GetString(received.ToArray()), true);
        }
        catch (IOException)
        {
            return (Encoding.ASCII.GetString(received.ToArray()), false);
        }
    }

    /// <summary>A TLS connection that sends part of a request head and leaves.</summary>
    private static async Task LeaveMidHeadAsync(IPEndPoint proxy, string partialHead, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(proxy, cancellationToken);
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "a.test",
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }, cancellationToken);
        await tls.WriteAsync(Encoding.ASCII.GetBytes(partialHead), cancellationToken);
        await tls.FlushAsync(cancellationToken);
        // Closed without close_notify: the proxy reads the half head, then the end.
    }
}
