using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Cutover.Bench;

/// <summary>
/// The floor under Cutover's TLS proxy on .NET, for measuring by hand against the agent and nginx (`tls-floor-serve PORT
/// CERT KEY BACKEND_PORT`, next to `tls-serve`): the least a .NET process does to terminate TLS and relay a GET to the
/// backend. Its own accept loop (each connection's handshake starts on the thread that accepted it: with inline socket
/// completions the epoll thread, no thread-pool hand-off), SslStream straight on the socket (no transport pipe, no
/// Kestrel connection), one buffer per connection, a canned request head upstream, pooled upstream sockets, the response
/// written to the SslStream in one write. Not a proxy (no routing, no forwarded headers, no bodies, no limits): what is
/// left between it and nginx is .NET's sockets, SslStream and OpenSSL; what is left between the agent and it is
/// Kestrel's connection layer and the fast path. bench/README.md (TLS termination) has what it measured.
/// </summary>
public static class TlsFloorServer
{
    /// <param name="openSsl">
    /// The `tls-openssl-floor-serve` twin: the same relay on Cutover.Core's Proxy/OpenSsl (OpenSSL driven directly, no
    /// SslStream) instead of SslStream, so the two floors differ in the TLS layer only.
    /// </param>
    public static async Task<int> RunAsync(int port, string certFile, string keyFile, int backendPort, bool openSsl = false)
    {
        using var certificate = X509Certificate2.CreateFromPemFile(certFile, keyFile);
        var context = SslStreamCertificateContext.Create(certificate, null);
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = context,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
        };
        using var native = openSsl ? new Cutover.Proxy.OpenSsl.OpenSslServer(_ => context, [SslApplicationProtocol.Http11]) : null;
        using var listening = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listening.Bind(new IPEndPoint(IPAddress.Loopback, port));
        listening.Listen(512);
        var backend = new IPEndPoint(IPAddress.Loopback, backendPort);
        var idle = new ConcurrentBag<Socket>();
        // The OpenSSL twin waits on Proxy/OpenSsl's socket threads (Platform/Epoll), as the agent's connections do.
        using var loops = openSsl ? new Cutover.Platform.Epoll.EpollLoops(e => Console.Error.WriteLine(e)) : null;
        var watched = new ConcurrentDictionary<Socket, Cutover.Platform.Epoll.EpollSocket>();
        Console.WriteLine($"tls {(openSsl ? "openssl " : "")}floor on https://127.0.0.1:{port}/ (pid {Environment.ProcessId}) -> 127.0.0.1:{backendPort}");
        while (true)
        {
            var client = await listening.AcceptAsync();
            // Runs synchronously up to its first wait for the network: the handshake starts on this thread.
            _ = ServeAsync(client, native is null ? SslStreamHandshake : OpenSslHandshake, backend, idle, watched);
        }

        async Task<Stream> SslStreamHandshake(Socket client)
        {
            var tls = new SslStream(new NetworkStream(client, ownsSocket: true));
            await tls.AuthenticateAsServerAsync(options, CancellationToken.None);
            return tls;
        }

        async Task<Stream> OpenSslHandshake(Socket client)
        {
            var io = watched[client] = Cutover.Platform.Epoll.EpollSocket.Connected(client, loops!.Next());
            var tls = new Cutover.Proxy.OpenSsl.OpenSslStream(io, native!);
            try
            {
                await tls.HandshakeAsync(CancellationToken.None);
            }
            catch
            {
                // The SSL object before the socket (ServeAsync's finally): OpenSSL holds the descriptor's number.
                await tls.DisposeAsync();
                throw;
            }
            return tls;
        }
    }

    private static async Task ServeAsync(Socket client, Func<Socket, Task<Stream>> handshake, IPEndPoint backend, ConcurrentBag<Socket> idle,
        ConcurrentDictionary<Socket, Cutover.Platform.Epoll.EpollSocket> watched)
    {
        client.NoDelay = true;
        var request = new byte[8192];
        var response = new byte[8192];
        var filled = 0;
        try
        {
            await using var tls = await handshake(client);
            while (true)
            {
                int headEnd;
                while ((headEnd = request.AsSpan(0, filled).IndexOf("\r\n\r\n"u8)) < 0)
                {
                    if (filled == request.Length) return;
                    var n = await tls.ReadAsync(request.AsMemory(filled));
                    if (n == 0) return;
                    filled += n;
                }
                var headLength = headEnd + 4;
                var close = request.AsSpan(0, headLength).IndexOf("Connection: close"u8) >= 0;
                var requestLine = request.AsSpan(0, headLength).IndexOf("\r\n"u8) + 2;
                var upstreamHead = Encoding.ASCII.GetBytes(Encoding.ASCII.GetString(request, 0, requestLine) + "Host: localhost\r\n\r\n");
                request.AsSpan(headLength, filled - headLength).CopyTo(request);
                filled -= headLength;

                if (!idle.TryTake(out var upstream))
                {
                    upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                    await upstream.ConnectAsync(backend);
                }
                await upstream.SendAsync(upstreamHead);
                var received = 0;
                int responseHead;
                while ((responseHead = response.AsSpan(0, received).IndexOf("\r\n\r\n"u8)) < 0)
                {
                    var n = await upstream.ReceiveAsync(response.AsMemory(received));
                    if (n == 0) throw new IOException("the backend closed");
                    received += n;
                }
                var bodyStart = responseHead + 4;
                var total = bodyStart + ContentLength(response.AsSpan(0, bodyStart));
                while (received < total)
                {
                    var n = await upstream.ReceiveAsync(response.AsMemory(received, total - received));
                    if (n == 0) throw new IOException("the backend closed");
                    received += n;
                }
                idle.Add(upstream);
                var output = RewriteHead(response.AsSpan(0, bodyStart), close);
                var relayed = new byte[output.Length + total - bodyStart];
                output.CopyTo(relayed, 0);
                response.AsSpan(bodyStart, total - bodyStart).CopyTo(relayed.AsSpan(output.Length));
                await tls.WriteAsync(relayed);
                await tls.FlushAsync();
                if (close) return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or System.Security.Authentication.AuthenticationException)
        {
        }
        finally
        {
            if (watched.TryRemove(client, out var io)) io.Dispose();
            else client.Dispose();
        }
    }

    private static int ContentLength(ReadOnlySpan<byte> head)
    {
        var text = Encoding.ASCII.GetString(head);
        var at = text.IndexOf("Content-Length:", StringComparison.OrdinalIgnoreCase);
        var end = text.IndexOf('\r', at);
        return int.Parse(text.AsSpan(at + 15, end - at - 15).Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The backend's head without its Connection field, with Connection: close when the client asked for it.</summary>
    private static byte[] RewriteHead(ReadOnlySpan<byte> head, bool close)
    {
        var lines = Encoding.ASCII.GetString(head).Split("\r\n").Where(l => l.Length > 0 && !l.StartsWith("Connection:", StringComparison.OrdinalIgnoreCase));
        return Encoding.ASCII.GetBytes(string.Join("\r\n", lines) + (close ? "\r\nConnection: close" : "") + "\r\n\r\n");
    }
}
