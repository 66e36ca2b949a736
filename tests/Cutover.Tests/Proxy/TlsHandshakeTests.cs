using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Cutover.Config;
using Cutover.Proxy;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Proxy;

/// <summary>
/// What a new TLS connection costs the agent beyond the cryptography (issue 14 item 1, issue 18's speed goal; numbers in
/// bench/README.md, TLS termination): the handshake options are made once per certificate, not per connection, and the
/// agent's thread pool does not spin.
/// </summary>
public class TlsHandshakeTests
{
    [Fact]
    public async Task Handshakes_share_one_openssl_context_per_certificate_and_a_reloaded_certificate_gets_its_own()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var dir = Directory.CreateTempSubdirectory("cutover-test-");
        await using var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? app = null;
        try
        {
            var (certFile, keyFile) = (Path.Combine(dir.FullName, "site.pem"), Path.Combine(dir.FullName, "site.key"));
            var first = PemCertificate.Write(certFile, keyFile, "a.test", "a.test");
            var tls = new IPEndPoint(IPAddress.Loopback, 0);
            app = await ProxyServer.StartAsync("site", new ProxyConfig
            {
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                Hosts = ["a.test"],
                Tls = new TlsConfig { Listen = tls, CertFile = certFile, KeyFile = keyFile },
            }, listeners, NullLoggerFactory.Instance, timeout.Token);
            var listener = listeners.TlsListenerOf(app);

            // Real handshakes, each on a new connection: the certificate served, and one SSL_CTX behind all of them.
            Assert.Equal(first, await ServedThumbprintAsync(listener.Bound, "a.test", timeout.Token));
            var certificate = listener.SelectCertificate("a.test")!;
            var context = listener.TlsContexts!.ContextFor(certificate);
            Assert.Equal(first, await ServedThumbprintAsync(listener.Bound, "A.TEST.", timeout.Token));
            Assert.Same(context, listener.TlsContexts.ContextFor(listener.SelectCertificate("a.test")!));
            Assert.Equal(first, certificate.TargetCertificate.Thumbprint);
            Assert.Null(listener.SelectCertificate("b.test")); // no app for it: the handshake fails, as before

            // Replaced files: the next handshake serves the new certificate, through an SSL_CTX of its own.
            var second = PemCertificate.Write(certFile, keyFile, "a.test", "a.test");
            ((CertificateFiles)app.Certificates!).ReloadIfChanged();
            Assert.Equal(second, await ServedThumbprintAsync(listener.Bound, "a.test", timeout.Token));
            var reloaded = listener.TlsContexts.ContextFor(listener.SelectCertificate("a.test")!);
            Assert.NotSame(context, reloaded);
            Assert.Equal(second, listener.SelectCertificate("a.test")!.TargetCertificate.Thumbprint);
            Assert.Same(reloaded, listener.TlsContexts.ContextFor(listener.SelectCertificate("a.test")!));
        }
        finally
        {
            if (app is not null) await app.DisposeAsync();
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Idle thread-pool workers spin (sched_yield) before they sleep; in the agent that cost about 80 context switches
    /// and a quarter of its CPU per new TLS connection. The setting is in cutover's runtimeconfig, so every agent has it,
    /// however it is started (in the background, by systemd, by an upgrade).
    /// </summary>
    [Fact]
    public void The_cutover_runtime_config_turns_thread_pool_spinning_off()
    {
        var runtimeConfig = Path.ChangeExtension(CutoverCli.Dll, ".runtimeconfig.json");
        using var document = JsonDocument.Parse(File.ReadAllText(runtimeConfig));
        var properties = document.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.Equal(0, properties.GetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit").GetInt32());
    }

    /// <summary>The agent picks its socket thread count unless the operator did; a count it cannot use is refused, not ignored.</summary>
    [Theory]
    [InlineData("0")]
    [InlineData("two")]
    [InlineData("-1")]
    public async Task An_agent_socket_thread_count_that_is_not_1_or_more_is_refused_before_anything_is_touched(string count)
    {
        using var dir = new TempDir();
        var home = dir.Combine("home");
        var result = await CutoverCli.RunAsync(dir.Path, new Dictionary<string, string>
        {
            ["CUTOVER_HOME"] = home,
            [Cutover.Platform.InlineSocketCompletions.ThreadCountVariable] = count,
        }, "agent");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"error: DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT must be a whole number of socket threads, 1 or more; got '{count}'", result.Stderr.Trim());
        Assert.False(Directory.Exists(home), "the refused agent created its home");
    }

    /// <summary>
    /// TLS listeners accept and end TLS themselves (Proxy/TlsFrontEnd) and give Kestrel's HTTP pipeline only what it serves.
    /// On one real listener: a ClientHello that arrives a few bytes at a time, then HTTP/1.1 through the fast path and a
    /// request handed to Kestrel on the same TLS connection; HTTP/2 by ALPN (Kestrel's, after our TLS); a client that leaves
    /// mid-handshake, one that never starts, one asking for a name no app serves; no connection left behind; and an idle
    /// keep-alive connection closed when the listener stops.
    /// </summary>
    [Fact]
    public async Task A_tls_listener_ends_tls_itself_and_hands_kestrel_http2_and_what_the_fast_path_does_not_do()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var dir = Directory.CreateTempSubdirectory("cutover-test-");
        var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? app = null;
        try
        {
            var (certFile, keyFile) = (Path.Combine(dir.FullName, "site.pem"), Path.Combine(dir.FullName, "site.key"));
            PemCertificate.Write(certFile, keyFile, "a.test", "a.test");
            app = await ProxyServer.StartAsync("site", new ProxyConfig
            {
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                Hosts = ["a.test"],
                Tls = new TlsConfig { Listen = new IPEndPoint(IPAddress.Loopback, 0), CertFile = certFile, KeyFile = keyFile },
            }, listeners, NullLoggerFactory.Instance, timeout.Token);
            var listener = listeners.TlsListenerOf(app);

            // The ClientHello (and the rest of the client's handshake) 7 bytes per write, each its own segment.
            using (var client = new TcpClient { NoDelay = true })
            {
                await client.ConnectAsync(listener.Bound, timeout.Token);
                await using var tls = new SslStream(new TrickleStream(client.GetStream(), 7));
                await tls.AuthenticateAsClientAsync(ClientOptions("a.test", SslApplicationProtocol.Http11), timeout.Token);
                Assert.Equal(SslApplicationProtocol.Http11, tls.NegotiatedApplicationProtocol);
                // The app has no instance: the fast path's own 503 (no Date: Kestrel did not write it), connection kept.
                var fastPath = await ExchangeAsync(tls, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", timeout.Token);
                Assert.StartsWith("HTTP/1.1 503 ", fastPath);
                Assert.DoesNotContain("\r\nDate:", fastPath);
                // HTTP/1.0 is Kestrel's: handed over on the same connection, TLS session and all; Kestrel's pipeline answers.
                var handedBefore = listener.HandedOver;
                var kestrel = await ExchangeAsync(tls, "GET / HTTP/1.0\r\nHost: a.test\r\n\r\n", timeout.Token);
                Assert.StartsWith("HTTP/1.1 503 ", kestrel);
                Assert.Contains("\r\nDate:", kestrel);
                Assert.Equal(handedBefore + 1, listener.HandedOver);
            }

            // HTTP/2 by ALPN goes to Kestrel at once, over the TLS this listener ended.
            using (var handler = new SocketsHttpHandler
            {
                SslOptions = { RemoteCertificateValidationCallback = (_, _, _, _) => true },
                ConnectCallback = async (_, cancellationToken) =>
                {
                    var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                    await socket.ConnectAsync(listener.Bound, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                },
            })
            using (var http = new HttpClient(handler))
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, $"https://a.test:{listener.Bound.Port}/")
                {
                    Version = HttpVersion.Version20,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                };
                using var response = await http.SendAsync(request, timeout.Token);
                Assert.Equal(HttpVersion.Version20, response.Version);
                Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
            }

            // A client that leaves mid-handshake (a record header and part of a ClientHello), one that never starts, and
            // one that asks for a name no app here serves: each closed, nothing of them left open.
            using (var leaver = new TcpClient())
            {
                await leaver.ConnectAsync(listener.Bound, timeout.Token);
                await leaver.GetStream().WriteAsync(new byte[] { 0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03 }, timeout.Token);
            }
            using (var silent = new TcpClient()) await silent.ConnectAsync(listener.Bound, timeout.Token);
            using (var stranger = new TcpClient())
            {
                await stranger.ConnectAsync(listener.Bound, timeout.Token);
                await using var tls = new SslStream(stranger.GetStream());
                await Assert.ThrowsAnyAsync<Exception>(() => tls.AuthenticateAsClientAsync(ClientOptions("b.test", SslApplicationProtocol.Http11), timeout.Token));
            }
            await Wait.UntilAsync(() => listener.OpenTlsConnections == 0, TimeSpan.FromSeconds(10), "every TLS connection closed", cancellationToken: timeout.Token);

            // An idle keep-alive connection is closed when the listener stops (the last app on it leaves).
            using var idle = new TcpClient();
            await idle.ConnectAsync(listener.Bound, timeout.Token);
            await using var idleTls = new SslStream(idle.GetStream());
            await idleTls.AuthenticateAsClientAsync(ClientOptions("a.test", SslApplicationProtocol.Http11), timeout.Token);
            Assert.StartsWith("HTTP/1.1 503 ", await ExchangeAsync(idleTls, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", timeout.Token));
            await app.DisposeAsync();
            app = null;
            Assert.Equal(0, await ReadToEndAsync(idleTls, timeout.Token));
        }
        finally
        {
            if (app is not null) await app.DisposeAsync();
            await listeners.DisposeAsync();
            dir.Delete(recursive: true);
        }
    }

    private static SslClientAuthenticationOptions ClientOptions(string serverName, SslApplicationProtocol protocol) => new()
    {
        TargetHost = serverName,
        ApplicationProtocols = [protocol],
        RemoteCertificateValidationCallback = (_, _, _, _) => true,
    };

    /// <summary>Writes <paramref name="request"/>, reads one response (head, then Content-Length body, or to the end); the text.</summary>
    private static async Task<string> ExchangeAsync(Stream stream, string request, CancellationToken cancellationToken)
    {
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(request), cancellationToken);
        var received = new List<byte>();
        var buffer = new byte[4096];
        while (true)
        {
            var text = System.Text.Encoding.ASCII.GetString(received.ToArray());
            var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (headEnd >= 0)
            {
                var length = System.Text.RegularExpressions.Regex.Match(text[..headEnd], @"(?im)^content-length:\s*(\d+)");
                if (length.Success && received.Count >= headEnd + 4 + int.Parse(length.Groups[1].Value)) return text;
            }
            var read = await stream.ReadAsync(buffer, cancellationToken);
            if (read == 0) return text;
            received.AddRange(buffer.AsSpan(0, read).ToArray());
        }
    }

    /// <summary>Bytes read until the server closes (0 when it closed without sending anything more).</summary>
    private static async Task<int> ReadToEndAsync(Stream stream, CancellationToken cancellationToken)
    {
        var total = 0;
        var buffer = new byte[1024];
        try
        {
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken)) > 0) total += read;
        }
        catch (IOException)
        {
            // A reset instead of a close_notify: closed all the same.
        }
        return total;
    }

    /// <summary>A stream whose writes go out <paramref name="chunk"/> bytes at a time, a millisecond apart (a slow client's segments).</summary>
    private sealed class TrickleStream(Stream inner, int chunk) : Stream
    {
        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            for (var offset = 0; offset < buffer.Length; offset += chunk)
            {
                await inner.WriteAsync(buffer.Slice(offset, Math.Min(chunk, buffer.Length - offset)), cancellationToken);
                await Task.Delay(1, cancellationToken);
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => inner.ReadAsync(buffer, cancellationToken);
        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.ReadAsync(buffer, offset, count, cancellationToken);
        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, count);
        public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>One full handshake on a new connection with <paramref name="serverName"/> as SNI; the leaf the server sent.</summary>
    private static async Task<string> ServedThumbprintAsync(IPEndPoint endpoint, string serverName, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(endpoint, cancellationToken);
        await using var tls = new SslStream(client.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }, cancellationToken);
        return tls.RemoteCertificate!.GetCertHashString();
    }
}
