using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Cutover.Config;
using Cutover.Proxy;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Proxy;

/// <summary>
/// TLS on OpenSSL driven directly (Proxy/OpenSsl, no SslStream: issue 18's speed goal), on a real listener with real
/// clients: what a hand-made TLS layer could get silently wrong. The chain, the certificate per SNI name, both protocol
/// versions, bodies of several MiB each way byte for byte, garbage and early leavers, and connections cut under load
/// from both ends (no use after free: the process would not survive one).
/// </summary>
public class TlsOpenSslTests
{
    private const int LargeResponse = 5 * 1024 * 1024 + 17;
    private const int LargeRequest = 3 * 1024 * 1024 + 5;

    [Fact]
    public async Task Two_apps_on_one_tls_port_get_their_certificate_by_sni_with_the_whole_chain_both_tls_versions_and_large_bodies_whole()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var dir = new TempDir();
        var responseBody = new byte[LargeResponse];
        new Random(18).NextBytes(responseBody);
        await using var backend = new ScriptedHttpBackend((request, _) => Task.FromResult<(byte[]?, bool)>((request.RequestLine.StartsWith("GET /big ", StringComparison.Ordinal)
            ? [.. Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {responseBody.Length}\r\n\r\n"), .. responseBody]
            : ScriptedHttpBackend.Ok($"got {request.Body.Length}"), false)));
        var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? shop = null, blog = null;
        try
        {
            var tlsListen = new IPEndPoint(IPAddress.Loopback, Cutover.Platform.LoopbackPort.Free());
            var (leafPem, intermediatePem) = PemChain.Write(dir.Combine("shop.pem"), dir.Combine("shop.key"), "shop.test");
            var blogThumbprint = PemCertificate.Write(dir.Combine("blog.pem"), dir.Combine("blog.key"), "blog.test", "blog.test");
            shop = await ProxyServer.StartAsync("shop", new ProxyConfig
            {
                Listen = new IPEndPoint(IPAddress.Loopback, 0), Hosts = ["shop.test"],
                Tls = new TlsConfig { Listen = tlsListen, CertFile = dir.Combine("shop.pem"), KeyFile = dir.Combine("shop.key") },
            }, listeners, NullLoggerFactory.Instance, timeout.Token);
            shop.Pool.Add(new Backend("shop-1", backend.Endpoint));
            blog = await ProxyServer.StartAsync("blog", new ProxyConfig
            {
                Listen = new IPEndPoint(IPAddress.Loopback, 0), Hosts = ["blog.test"],
                Tls = new TlsConfig { Listen = tlsListen, CertFile = dir.Combine("blog.pem"), KeyFile = dir.Combine("blog.key") },
            }, listeners, NullLoggerFactory.Instance, timeout.Token);
            var listener = listeners.TlsListenerOf(shop);
            Assert.Same(listener, listeners.TlsListenerOf(blog));

            // The chain as OpenSSL's own client sees it: leaf, then the intermediate from the same PEM file.
            var served = await ShowCertsAsync(tlsListen, "shop.test", timeout.Token);
            Assert.Equal([Base64Of(leafPem), Base64Of(intermediatePem)], served);

            // SNI: each app's certificate on the one port; a name neither serves gets no handshake.
            var (blogTls, blogClient) = await HandshakeAsync(tlsListen, "blog.test", SslProtocols.None, timeout.Token);
            using (blogClient)
            await using (blogTls)
                Assert.Equal(blogThumbprint, blogTls.RemoteCertificate!.GetCertHashString());
            await Assert.ThrowsAnyAsync<Exception>(() => HandshakeAsync(tlsListen, "other.test", SslProtocols.None, timeout.Token));

            // TLS 1.2: a 5 MiB response, byte for byte, then a small request on the same connection.
            var (tls12, client12) = await HandshakeAsync(tlsListen, "shop.test", SslProtocols.Tls12, timeout.Token);
            using (client12)
            await using (tls12)
            {
                Assert.Equal(SslProtocols.Tls12, tls12.SslProtocol);
                Assert.Equal(SslApplicationProtocol.Http11, tls12.NegotiatedApplicationProtocol);
                await tls12.WriteAsync("GET /big HTTP/1.1\r\nHost: shop.test\r\n\r\n"u8.ToArray(), timeout.Token);
                Assert.Equal(responseBody, await ReadResponseBodyAsync(tls12, timeout.Token));
                await tls12.WriteAsync("GET /small HTTP/1.1\r\nHost: shop.test\r\n\r\n"u8.ToArray(), timeout.Token);
                Assert.Equal("got 0", Encoding.ASCII.GetString(await ReadResponseBodyAsync(tls12, timeout.Token)));
            }

            // TLS 1.3: a 3 MiB request body reaches the app byte for byte.
            var requestBody = new byte[LargeRequest];
            new Random(19).NextBytes(requestBody);
            var (tls13, client13) = await HandshakeAsync(tlsListen, "shop.test", SslProtocols.Tls13, timeout.Token);
            using (client13)
            await using (tls13)
            {
                Assert.Equal(SslProtocols.Tls13, tls13.SslProtocol);
                await tls13.WriteAsync(Encoding.ASCII.GetBytes($"POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: {requestBody.Length}\r\n\r\n"), timeout.Token);
                await tls13.WriteAsync(requestBody, timeout.Token);
                Assert.Equal($"got {requestBody.Length}", Encoding.ASCII.GetString(await ReadResponseBodyAsync(tls13, timeout.Token)));
                Assert.Equal(requestBody, backend.Requests.Single(r => r.RequestLine.StartsWith("POST /upload ", StringComparison.Ordinal)).Body);
            }

            // Plain HTTP instead of a ClientHello, random bytes, and a client gone mid-handshake: each closed by the listener.
            foreach (var garbage in new[] { "GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n"u8.ToArray(), RandomBytes(300) })
            {
                using var client = new TcpClient();
                await client.ConnectAsync(tlsListen, timeout.Token);
                await client.GetStream().WriteAsync(garbage, timeout.Token);
                Assert.True(await ClosedByServerAsync(client.GetStream(), timeout.Token), "the listener kept a connection that sent garbage");
            }
            using (var leaver = new TcpClient())
            {
                await leaver.ConnectAsync(tlsListen, timeout.Token);
                await leaver.GetStream().WriteAsync(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 1, 2, 3 }, timeout.Token);
            }
            await Wait.UntilAsync(() => listener.OpenTlsConnections == 0, TimeSpan.FromSeconds(10), "every TLS connection closed", cancellationToken: timeout.Token);
        }
        finally
        {
            if (shop is not null) await shop.DisposeAsync();
            if (blog is not null) await blog.DisposeAsync();
            await listeners.DisposeAsync();
        }
    }

    /// <summary>
    /// Clients that reset their connections mid-handshake and mid-response, while others keep going; then the listener
    /// stopped with no drain at all, which aborts every connection with its pump's read pending and responses in flight.
    /// The process survives it (a use after free of an SSL object or a read on a reused descriptor would not), every
    /// connection is closed, and between the two a new client still gets a whole response.
    /// </summary>
    [Fact]
    public async Task Connections_cut_by_clients_and_aborted_by_a_stopping_listener_under_load_close_cleanly()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var dir = new TempDir();
        var body = RandomBytes(256 * 1024);
        await using var backend = new ScriptedHttpBackend((_, _) => Task.FromResult<(byte[]?, bool)>(
            ([.. Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {body.Length}\r\n\r\n"), .. body], false)));
        var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? app = null;
        try
        {
            PemCertificate.Write(dir.Combine("site.pem"), dir.Combine("site.key"), "a.test", "a.test");
            app = await ProxyServer.StartAsync("site", new ProxyConfig
            {
                Listen = new IPEndPoint(IPAddress.Loopback, 0), Hosts = ["a.test"],
                Tls = new TlsConfig { Listen = new IPEndPoint(IPAddress.Loopback, 0), CertFile = dir.Combine("site.pem"), KeyFile = dir.Combine("site.key") },
            }, listeners, NullLoggerFactory.Instance, timeout.Token);
            app.Pool.Add(new Backend("site-1", backend.Endpoint));
            var listener = listeners.TlsListenerOf(app);

            // Eight clients, 60 connections each, cut at every stage: after part of a ClientHello, after the handshake,
            // after the request, a few KiB into the response. RST, not FIN (linger 0).
            var cutters = Enumerable.Range(0, 8).Select(client => Task.Run(async () =>
            {
                for (var i = 0; i < 60; i++)
                {
                    using var tcp = new TcpClient { LingerState = new LingerOption(true, 0) };
                    await tcp.ConnectAsync(listener.Bound, timeout.Token);
                    var stage = (client + i) % 4;
                    if (stage == 0)
                    {
                        await tcp.GetStream().WriteAsync(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01 }, timeout.Token);
                        continue;
                    }
                    await using var tls = new SslStream(tcp.GetStream());
                    await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "a.test", RemoteCertificateValidationCallback = (_, _, _, _) => true }, timeout.Token);
                    if (stage == 1) continue;
                    await tls.WriteAsync("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"u8.ToArray(), timeout.Token);
                    if (stage == 2) continue;
                    var buffer = new byte[4096];
                    for (var read = 0; read < 8192;) read += await tls.ReadAsync(buffer, timeout.Token);
                }
            }, timeout.Token)).ToArray();
            await Task.WhenAll(cutters);

            var (tls, tcp) = await HandshakeAsync(listener.Bound, "a.test", SslProtocols.None, timeout.Token);
            using (tcp)
            await using (tls)
            {
                await tls.WriteAsync("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"u8.ToArray(), timeout.Token);
                Assert.Equal(body, await ReadResponseBodyAsync(tls, timeout.Token));
            }
            await Wait.UntilAsync(() => listener.OpenTlsConnections == 0, TimeSpan.FromSeconds(10), "every cut connection closed", cancellationToken: timeout.Token);

            // Keep-alive load, then the listener stopped with nothing left to drain: every connection aborted mid-flight.
            using var stopLoad = new CancellationTokenSource();
            var served = 0;
            var load = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
            {
                try
                {
                    var (client, socket) = await HandshakeAsync(listener.Bound, "a.test", SslProtocols.None, timeout.Token);
                    using (socket)
                    await using (client)
                    {
                        while (!stopLoad.IsCancellationRequested)
                        {
                            await client.WriteAsync("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"u8.ToArray(), timeout.Token);
                            await ReadResponseBodyAsync(client, timeout.Token);
                            Interlocked.Increment(ref served);
                        }
                    }
                }
                catch (Exception e) when (e is IOException or SocketException or AuthenticationException or EndOfStreamException)
                {
                    // Cut by the stopping listener: expected.
                }
            })).ToArray();
            await Wait.UntilAsync(() => Volatile.Read(ref served) >= 40, TimeSpan.FromSeconds(20), "the keep-alive load running", cancellationToken: timeout.Token);
            await listener.StopAsync(new CancellationToken(canceled: true)).AsTask().WaitAsync(TimeSpan.FromSeconds(10), timeout.Token);
            Assert.Equal(0, listener.OpenTlsConnections);
            stopLoad.Cancel();
            await Task.WhenAll(load).WaitAsync(TimeSpan.FromSeconds(10), timeout.Token);
        }
        finally
        {
            if (app is not null) await app.DisposeAsync();
            await listeners.DisposeAsync();
        }
    }

    private static byte[] RandomBytes(int count)
    {
        var bytes = new byte[count];
        Random.Shared.NextBytes(bytes);
        return bytes;
    }

    private static string Base64Of(string pem) =>
        string.Concat(pem.Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith("-----", StringComparison.Ordinal)));

    /// <summary>The certificates the server sends, as `openssl s_client -showcerts` prints them (base64 of each, in order).</summary>
    private static async Task<string[]> ShowCertsAsync(IPEndPoint endpoint, string serverName, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("openssl", ["s_client", "-showcerts", "-connect", $"{endpoint.Address}:{endpoint.Port}", "-servername", serverName])
        { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        var output = await process.StandardOutput.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        await stderr;
        var blocks = new List<string>();
        var at = 0;
        while ((at = output.IndexOf("-----BEGIN CERTIFICATE-----", at, StringComparison.Ordinal)) >= 0)
        {
            var end = output.IndexOf("-----END CERTIFICATE-----", at, StringComparison.Ordinal) + "-----END CERTIFICATE-----".Length;
            blocks.Add(Base64Of(output[at..end]));
            at = end;
        }
        return [.. blocks];
    }

    private static async Task<(SslStream Tls, TcpClient Client)> HandshakeAsync(IPEndPoint endpoint, string serverName, SslProtocols protocols, CancellationToken cancellationToken)
    {
        var client = new TcpClient { NoDelay = true };
        try
        {
            await client.ConnectAsync(endpoint, cancellationToken);
            var tls = new SslStream(client.GetStream());
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = serverName,
                EnabledSslProtocols = protocols,
                ApplicationProtocols = [SslApplicationProtocol.Http11],
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            }, cancellationToken);
            return (tls, client);
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    /// <summary>One response read to the end of its Content-Length body; the body.</summary>
    private static async Task<byte[]> ReadResponseBodyAsync(Stream stream, CancellationToken cancellationToken)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < 4 || !(head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0) throw new EndOfStreamException("closed before the response head ended");
            head.Add(one[0]);
        }
        var text = Encoding.ASCII.GetString(head.ToArray());
        Assert.StartsWith("HTTP/1.1 200 ", text);
        var length = int.Parse(System.Text.RegularExpressions.Regex.Match(text, @"(?im)^content-length:\s*(\d+)").Groups[1].Value);
        var body = new byte[length];
        await stream.ReadExactlyAsync(body, cancellationToken);
        return body;
    }

    /// <summary>Whether the server closes the connection (an alert may come first) within 10 s.</summary>
    private static async Task<bool> ClosedByServerAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        using var within = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        within.CancelAfter(TimeSpan.FromSeconds(10));
        var buffer = new byte[1024];
        try
        {
            while (await stream.ReadAsync(buffer, within.Token) > 0) { }
            return true;
        }
        catch (IOException)
        {
            return true; // a reset: closed all the same
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
        }
    }
}
