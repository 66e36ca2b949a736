using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Authentication;
using System.Text;
using Cutover.Config;
using Cutover.Platform;
using Cutover.Proxy;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Proxy;

/// <summary>
/// Where a TLS layer of our own (Proxy/OpenSsl) can be silently wrong, attacked with real clients on a real listener
/// (`openssl s_client` processes and .NET's SslStream): session resumption across the apps of one port, TLS 1.3
/// KeyUpdate and TLS 1.2 renegotiation mid-connection, requests in many tiny records, close_notify with the TCP
/// connection left open, alerts mid-request, 0-RTT early data, and the listener stopped with handshakes in flight.
/// </summary>
public class TlsEdgeCaseTests
{
    /// <summary>
    /// RFC 8446 4.6.1 / RFC 6066 section 3: a session made under one name must not resume under another; the server
    /// makes a full handshake instead, with the other name's certificate. Both apps on the port share the listener's
    /// ticket keys, so only the server's check stands between a.test's ticket and b.test's context. On the same name
    /// resumption works (what makes repeated connections cheap), also after the name's certificate was reloaded (as
    /// nginx: same ticket keys, same name).
    /// </summary>
    [Fact]
    public async Task A_session_resumes_only_under_the_name_it_was_made_for_in_tls12_and_tls13_also_after_a_certificate_reload()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var dir = new TempDir();
        await using var backendA = new ScriptedHttpBackend((_, _) => Task.FromResult<(byte[]?, bool)>((ScriptedHttpBackend.Ok("served by app a\n"), false)));
        await using var backendB = new ScriptedHttpBackend((_, _) => Task.FromResult<(byte[]?, bool)>((ScriptedHttpBackend.Ok("served by app b\n"), false)));
        var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? appA = null, appB = null;
        try
        {
            var tlsListen = new IPEndPoint(IPAddress.Loopback, LoopbackPort.Free());
            PemCertificate.Write(dir.Combine("a.pem"), dir.Combine("a.key"), "a.test", "a.test");
            PemCertificate.Write(dir.Combine("b.pem"), dir.Combine("b.key"), "b.test", "b.test");
            appA = await StartAppAsync("a", "a.test", tlsListen, dir, listeners, timeout.Token);
            appA.Pool.Add(new Backend("a-1", backendA.Endpoint));
            appB = await StartAppAsync("b", "b.test", tlsListen, dir, listeners, timeout.Token);
            appB.Pool.Add(new Backend("b-1", backendB.Endpoint));
            var listener = listeners.TlsListenerOf(appA);

            foreach (var version in new[] { "-tls1_2", "-tls1_3" })
            {
                var session = dir.Combine($"a{version}.session");
                var made = await GetAsync(tlsListen, "a.test", version, timeout.Token, "-sess_out", session);
                Assert.Contains("New, TLS", made);
                Assert.Contains("served by app a", made);

                var resumed = await GetAsync(tlsListen, "a.test", version, timeout.Token, "-sess_in", session);
                Assert.True(resumed.Contains("Reused, TLS", StringComparison.Ordinal), $"{version}: a.test's session did not resume on a.test:\n{resumed}");
                Assert.Contains("served by app a", resumed);

                // a.test's ticket offered for b.test: a full handshake, b.test's certificate authenticated.
                var crossed = await GetAsync(tlsListen, "b.test", version, timeout.Token, "-sess_in", session);
                Assert.True(crossed.Contains("New, TLS", StringComparison.Ordinal), $"{version}: a.test's session resumed under b.test:\n{crossed}");
                Assert.Contains("subject=CN = b.test", crossed);
                Assert.Contains("served by app b", crossed);
            }

            // a.test's certificate replaced: new handshakes get the new one, a session from before still resumes on a.test
            // (same ticket keys, same name), and still not on b.test.
            var replaced = PemCertificate.Write(dir.Combine("a.pem"), dir.Combine("a.key"), "a.test", "a.test");
            ((CertificateFiles)appA.Certificates!).ReloadIfChanged();
            Assert.Equal(replaced, listener.SelectCertificate("a.test")!.TargetCertificate.Thumbprint);
            foreach (var version in new[] { "-tls1_2", "-tls1_3" })
            {
                var session = dir.Combine($"a{version}.session");
                var resumed = await GetAsync(tlsListen, "a.test", version, timeout.Token, "-sess_in", session);
                Assert.True(resumed.Contains("Reused, TLS", StringComparison.Ordinal), $"{version}: a.test's session did not resume after the reload:\n{resumed}");
                var crossed = await GetAsync(tlsListen, "b.test", version, timeout.Token, "-sess_in", session);
                Assert.True(crossed.Contains("New, TLS", StringComparison.Ordinal), $"{version}: a.test's session resumed under b.test after the reload:\n{crossed}");
            }
            await Wait.UntilAsync(() => listener.OpenTlsConnections == 0, TimeSpan.FromSeconds(10), "every TLS connection closed", cancellationToken: timeout.Token);
        }
        finally
        {
            if (appA is not null) await appA.DisposeAsync();
            if (appB is not null) await appB.DisposeAsync();
            await listeners.DisposeAsync();
        }
    }

    /// <summary>
    /// TLS 1.3 KeyUpdate between keep-alive requests, requested (the server must answer with its own, and encrypt with
    /// its new keys from there) and not requested: every request after it is read and answered. TLS 1.2 renegotiation is
    /// refused (no_renegotiation) without hanging that connection or disturbing a neighbour's.
    /// </summary>
    [Fact]
    public async Task KeyUpdates_both_ways_keep_a_connection_working_and_a_refused_renegotiation_disturbs_no_neighbour()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var dir = new TempDir();
        await using var backend = new ScriptedHttpBackend((request, _) => Task.FromResult<(byte[]?, bool)>((ScriptedHttpBackend.Ok($"answer {request.RequestLine.Split(' ')[1]}\n"), false)));
        var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? app = null;
        try
        {
            PemCertificate.Write(dir.Combine("a.pem"), dir.Combine("a.key"), "a.test", "a.test");
            app = await StartAppAsync("a", "a.test", new IPEndPoint(IPAddress.Loopback, 0), dir, listeners, timeout.Token);
            app.Pool.Add(new Backend("a-1", backend.Endpoint));
            var listener = listeners.TlsListenerOf(app);

            // A neighbour on keep-alive the whole time.
            var (neighbour, neighbourTcp) = await HandshakeAsync(listener.Bound, "a.test", SslProtocols.Tls12, timeout.Token);
            using var neighbourTcpOwned = neighbourTcp;
            await using var neighbourOwned = neighbour;
            Assert.Equal("answer /neighbour-1\n", await ExchangeAsync(neighbour, "/neighbour-1", timeout.Token));

            await using (var client = OpenSslClient.Start(listener.Bound, "-servername", "a.test", "-tls1_3", "-msg"))
            {
                await client.WriteAsync(Request("/one"), timeout.Token);
                await client.WaitForOutputAsync("answer /one", timeout.Token);
                await client.CommandAsync('K', "KEYUPDATE", timeout.Token);
                await client.WriteAsync(Request("/two"), timeout.Token);
                await client.WaitForOutputAsync("answer /two", timeout.Token);
                await client.CommandAsync('k', "KEYUPDATE", timeout.Token);
                await client.WriteAsync(Request("/three"), timeout.Token);
                await client.WaitForOutputAsync("answer /three", timeout.Token);
                await client.EndInputAsync(timeout.Token);
                // Two sent, one answered: the server's KeyUpdate for the requested one, none for the other.
                Assert.Equal(2, OpenSslClient.Count(client.Output, ">>> TLS 1.3, Handshake [length 0005], KeyUpdate"));
                Assert.Equal(1, OpenSslClient.Count(client.Output, "<<< TLS 1.3, Handshake [length 0005], KeyUpdate"));
            }

            await using (var client = OpenSslClient.Start(listener.Bound, "-servername", "a.test", "-tls1_2", "-msg"))
            {
                await client.WriteAsync(Request("/four"), timeout.Token);
                await client.WaitForOutputAsync("answer /four", timeout.Token);
                // The renegotiation's ClientHello gets the no_renegotiation warning; s_client gives up with a fatal alert
                // and exits, and the server closes its side (the open-connection count below).
                await client.CommandAsync('R', "RENEGOTIATING", timeout.Token);
                await Wait.UntilAsync(() => client.HasExited, TimeSpan.FromSeconds(10), "the renegotiating client to be refused", cancellationToken: timeout.Token);
                await client.EndInputAsync(timeout.Token);
                Assert.True(client.Output.Contains("<<< TLS 1.2, Alert [length 0002], warning no_renegotiation", StringComparison.Ordinal), client.Output + client.Errors);
                Assert.Contains("no renegotiation", client.Errors);
            }

            Assert.Equal("answer /neighbour-2\n", await ExchangeAsync(neighbour, "/neighbour-2", timeout.Token));
            Assert.Equal(["/neighbour-1", "/one", "/two", "/three", "/four"], backend.Requests.Select(r => r.RequestLine.Split(' ')[1]).Where(p => p != "/neighbour-2"));
            neighbourOwned.Dispose();
            neighbourTcpOwned.Dispose();
            await Wait.UntilAsync(() => listener.OpenTlsConnections == 0, TimeSpan.FromSeconds(10), "every TLS connection closed", cancellationToken: timeout.Token);
        }
        finally
        {
            if (app is not null) await app.DisposeAsync();
            await listeners.DisposeAsync();
        }
    }

    private static Task<ProxyServer> StartAppAsync(string name, string host, IPEndPoint tlsListen, TempDir dir, ProxyListeners listeners, CancellationToken cancellationToken) =>
        ProxyServer.StartAsync(name, new ProxyConfig
        {
            Listen = new IPEndPoint(IPAddress.Loopback, 0), Hosts = [host],
            Tls = new TlsConfig { Listen = tlsListen, CertFile = dir.Combine(name + ".pem"), KeyFile = dir.Combine(name + ".key") },
        }, listeners, NullLoggerFactory.Instance, cancellationToken);

    private static string Request(string path, string host = "a.test", bool close = false) =>
        $"GET {path} HTTP/1.1\r\nHost: {host}\r\n{(close ? "Connection: close\r\n" : "")}\r\n";

    /// <summary>One GET with Connection: close by `openssl s_client` (which waits for the server to close): all it printed.</summary>
    private static Task<string> GetAsync(IPEndPoint endpoint, string serverName, string version, CancellationToken cancellationToken, params string[] options) =>
        OpenSslClient.RunAsync(endpoint, Request("/", serverName, close: true), cancellationToken, ["-servername", serverName, version, "-ign_eof", .. options]);

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

    /// <summary>One keep-alive GET on <paramref name="tls"/>: the response's body as text.</summary>
    private static async Task<string> ExchangeAsync(SslStream tls, string path, CancellationToken cancellationToken)
    {
        await tls.WriteAsync(Encoding.ASCII.GetBytes(Request(path)), cancellationToken);
        return Encoding.ASCII.GetString(await ReadResponseBodyAsync(tls, cancellationToken));
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
}
