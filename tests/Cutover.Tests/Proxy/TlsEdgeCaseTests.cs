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
public partial class TlsEdgeCaseTests
{
    private const int BigResponse = 16 * 1024 * 1024;

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
                // The same name in other letters, with the root's dot: the same name.
                Assert.Contains("Reused, TLS", await GetAsync(tlsListen, "A.TEST.", version, timeout.Token, "-sess_in", session));

                // a.test's ticket offered for b.test: a full handshake, b.test's certificate authenticated.
                var crossed = await GetAsync(tlsListen, "b.test", version, timeout.Token, "-sess_in", session);
                Assert.True(crossed.Contains("New, TLS", StringComparison.Ordinal), $"{version}: a.test's session resumed under b.test:\n{crossed}");
                Assert.Contains("subject=CN = b.test", crossed);
                Assert.Contains("served by app b", crossed);
            }

            // TLS 1.2 without tickets (a session id only): no server-side session cache, so no resumption, under any name.
            var sessionId = dir.Combine("a-id.session");
            Assert.Contains("New, TLS", await GetAsync(tlsListen, "a.test", "-tls1_2", timeout.Token, "-no_ticket", "-sess_out", sessionId));
            Assert.Contains("New, TLS", await GetAsync(tlsListen, "b.test", "-tls1_2", timeout.Token, "-no_ticket", "-sess_in", sessionId));

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
        var bigBody = string.Concat(Enumerable.Range(0, BigResponse / 16).Select(i => $"{i:x15}\n"));
        await using var backend = new ScriptedHttpBackend((request, _) => Task.FromResult<(byte[]?, bool)>((request.RequestLine.Split(' ')[1] switch
        {
            "/big" => ScriptedHttpBackend.Ok(bigBody),
            var path => ScriptedHttpBackend.Ok($"answer {path} {request.Body.Length}\n"),
        }, false)));
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
            using var neighbourConnection = neighbourTcp;
            await using var neighbourTls = neighbour;
            Assert.Equal("answer /neighbour-1 0\n", await ExchangeAsync(neighbour, "/neighbour-1", timeout.Token));

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
                // Mid-request: half a body, the client's new keys, the rest of the body.
                // (s_client takes a command letter only alone in a read of stdin: the half is seen sent, by -msg's trace, first.)
                var sentBefore = OpenSslClient.Count(client.Output, ">>> TLS");
                await client.WriteAsync("POST /upload HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\n01234", timeout.Token);
                await Wait.UntilAsync(() => OpenSslClient.Count(client.Output, ">>> TLS") > sentBefore, TimeSpan.FromSeconds(5), "the request's first half sent", cancellationToken: timeout.Token);
                await client.CommandAsync('K', "KEYUPDATE", timeout.Token);
                await client.WriteAsync("56789", timeout.Token);
                await client.WaitForOutputAsync("answer /upload 10", timeout.Token);
                await client.EndInputAsync(timeout.Token);
                // Three sent, two answered: the server's KeyUpdate for each requested one, none for the other.
                Assert.Equal(3, OpenSslClient.Count(client.Output, ">>> TLS 1.3, Handshake [length 0005], KeyUpdate"));
                Assert.Equal(2, OpenSslClient.Count(client.Output, "<<< TLS 1.3, Handshake [length 0005], KeyUpdate"));
            }

            // Mid-response: the client's bytes pass through a relay that stops forwarding the server's while a 16 MiB
            // response is in flight (the server's sends back up: it cannot have sent it all); the client asks for new
            // keys, then the relay forwards again (-nbio: a blocking s_client would sit in a read of half a record, deaf
            // to its stdin). The server's KeyUpdate goes out between the body's records, every record after it under the
            // new keys: the body arrives whole, and the next request is answered.
            await using (var relay = new PausableRelay(listener.Bound))
            await using (var client = OpenSslClient.Start(relay.Endpoint, "-servername", "a.test", "-tls1_3", "-msg", "-nbio"))
            {
                await client.WriteAsync(Request("/one-before-big"), timeout.Token);
                await client.WaitForOutputAsync("answer /one-before-big", timeout.Token);
                relay.PauseServerToClient();
                await client.WriteAsync(Request("/big"), timeout.Token);
                await Wait.UntilAsync(() => relay.ServerBytesWaiting >= 64 * 1024, TimeSpan.FromSeconds(10), "the big response backed up at the relay", cancellationToken: timeout.Token);
                await client.CommandAsync('K', "KEYUPDATE", timeout.Token);
                await Wait.UntilAsync(() => relay.ClientToServerBytes > relay.ClientToServerBytesAtPause + Request("/big").Length, TimeSpan.FromSeconds(5), "the KeyUpdate relayed to the server", cancellationToken: timeout.Token);
                relay.ResumeServerToClient();
                await client.WaitForOutputAsync(bigBody[^32..], timeout.Token);
                await client.WriteAsync(Request("/after-big"), timeout.Token);
                await client.WaitForOutputAsync("answer /after-big", timeout.Token);
                await client.EndInputAsync(timeout.Token);
                var output = client.Output;
                var headAt = output.IndexOf($"Content-Length: {bigBody.Length}\r\n\r\n", StringComparison.Ordinal);
                var serverKeyUpdateAt = output.IndexOf("<<< TLS 1.3, Handshake [length 0005], KeyUpdate", StringComparison.Ordinal);
                var bodyEndAt = output.IndexOf(bigBody[^32..], StringComparison.Ordinal);
                Assert.True(headAt > 0 && headAt < serverKeyUpdateAt && serverKeyUpdateAt < bodyEndAt, $"the server's KeyUpdate was not between the body's records ({headAt}, {serverKeyUpdateAt}, {bodyEndAt})");
                // The body with -msg's trace of each record taken out: whole, byte for byte.
                var body = MsgTrace().Replace(output[(headAt + $"Content-Length: {bigBody.Length}\r\n\r\n".Length)..(bodyEndAt + 32)], "");
                Assert.True(body == bigBody, $"the 16 MiB body arrived with {body.Length} bytes, not byte for byte");
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

            Assert.Equal("answer /neighbour-2 0\n", await ExchangeAsync(neighbour, "/neighbour-2", timeout.Token));
            Assert.Equal(["/neighbour-1", "/one", "/two", "/three", "/upload", "/one-before-big", "/big", "/after-big", "/four", "/neighbour-2"], backend.Requests.Select(r => r.RequestLine.Split(' ')[1]));
            Assert.Equal("0123456789", Encoding.ASCII.GetString(backend.Requests.Single(r => r.RequestLine.StartsWith("POST /upload ", StringComparison.Ordinal)).Body));
            neighbour.Dispose();
            neighbourTcp.Dispose();
            await Wait.UntilAsync(() => listener.OpenTlsConnections == 0, TimeSpan.FromSeconds(10), "every TLS connection closed", cancellationToken: timeout.Token);
        }
        finally
        {
            if (app is not null) await app.DisposeAsync();
            await listeners.DisposeAsync();
        }
    }

    /// <summary>
    /// Record and state edge cases on one listener: a request in a record per byte; close_notify after a response with
    /// the TCP connection left open (the server must end the connection, not wait on it); close_notify and a fatal alert
    /// in the middle of a request head (nothing reaches the app); 0-RTT early data: tickets allow none, and a client
    /// that sends some anyway is refused (a 1-RTT resumption) and the early request never reaches the app.
    /// </summary>
    [Fact]
    public async Task Tiny_records_close_notify_with_tcp_left_open_alerts_mid_request_and_early_data_never_replayed()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var dir = new TempDir();
        await using var backend = new ScriptedHttpBackend((request, _) => Task.FromResult<(byte[]?, bool)>(
            (ScriptedHttpBackend.Ok($"answer {request.RequestLine.Split(' ')[1]} {Encoding.ASCII.GetString(request.Body)}\n"), false)));
        var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? app = null;
        try
        {
            PemCertificate.Write(dir.Combine("a.pem"), dir.Combine("a.key"), "a.test", "a.test");
            app = await StartAppAsync("a", "a.test", new IPEndPoint(IPAddress.Loopback, 0), dir, listeners, timeout.Token);
            app.Pool.Add(new Backend("a-1", backend.Endpoint));
            var listener = listeners.TlsListenerOf(app);

            // A request with a body, one TLS record per byte (SslStream makes a record of every write), both versions.
            foreach (var version in new[] { SslProtocols.Tls12, SslProtocols.Tls13 })
            {
                var (tls, tcp) = await HandshakeAsync(listener.Bound, "a.test", version, timeout.Token);
                using (tcp)
                await using (tls)
                {
                    foreach (var b in Encoding.ASCII.GetBytes("POST /tiny HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhello"))
                        await tls.WriteAsync(new[] { b }, timeout.Token);
                    Assert.Equal("answer /tiny hello\n", Encoding.ASCII.GetString(await ReadResponseBodyAsync(tls, timeout.Token)));

                    // close_notify after the response, the TCP connection left open: the server answers with its own
                    // close_notify and closes the TCP connection.
                    await tls.ShutdownAsync();
                    Assert.Equal(0, await tls.ReadAsync(new byte[16], timeout.Token));
                    Assert.True(await ClosedByServerAsync(tcp.Client, timeout.Token), $"{version}: the server kept a connection the client had closed with close_notify");
                }
            }

            // close_notify, then a plaintext fatal alert record, each in the middle of a request head.
            foreach (var ending in new[] { "close_notify", "alert" })
            {
                var (tls, tcp) = await HandshakeAsync(listener.Bound, "a.test", SslProtocols.Tls13, timeout.Token);
                using (tcp)
                await using (tls)
                {
                    await tls.WriteAsync(Encoding.ASCII.GetBytes($"GET /cut-by-{ending} HTTP/1.1\r\nHost: a.t"), timeout.Token);
                    if (ending == "close_notify") await tls.ShutdownAsync();
                    else await tcp.GetStream().WriteAsync(new byte[] { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28 }, timeout.Token); // fatal handshake_failure
                    Assert.True(await ClosedByServerAsync(tcp.Client, timeout.Token), $"the server kept a connection the client ended with {ending} mid-request");
                }
            }

            // 0-RTT: the server's tickets allow no early data at all.
            var session = dir.Combine("tls13.session");
            var made = await GetAsync(listener.Bound, "a.test", "-tls1_3", timeout.Token, "-sess_out", session);
            Assert.Contains("Max Early Data: 0", made);
            // A client that sends early data all the same (its copy of the session claims 16 KiB): refused, the early
            // request never reaches the app, the request after the handshake does, once.
            var claimsEarlyData = dir.Combine("early.session");
            ClientSession.AllowEarlyData(session, claimsEarlyData);
            await File.WriteAllTextAsync(dir.Combine("early.txt"), Request("/early"), timeout.Token);
            var early = await OpenSslClient.RunAsync(listener.Bound, Request("/after", close: true), timeout.Token,
                "-servername", "a.test", "-tls1_3", "-ign_eof", "-sess_in", claimsEarlyData, "-early_data", dir.Combine("early.txt"));
            Assert.True(early.Contains("Early data was rejected", StringComparison.Ordinal), early);
            Assert.Contains("Reused, TLSv1.3", early);
            Assert.Contains("answer /after", early);

            var paths = backend.Requests.Select(r => r.RequestLine.Split(' ')[1]).ToArray();
            Assert.Equal(["/tiny", "/tiny", "/", "/after"], paths);
            Assert.Equal("hello", Encoding.ASCII.GetString(backend.Requests.First().Body));
            await Wait.UntilAsync(() => listener.OpenTlsConnections == 0, TimeSpan.FromSeconds(10), "every TLS connection closed", cancellationToken: timeout.Token);
        }
        finally
        {
            if (app is not null) await app.DisposeAsync();
            await listeners.DisposeAsync();
        }
    }

    /// <summary>
    /// The listener stopped with no drain while dozens of handshakes are in flight: clients looping full handshakes,
    /// clients stalled after their ClientHello (the server's flight sent, its SSL object waiting), clients stalled half
    /// way through a ClientHello, and `openssl s_client` processes idle after theirs. No crash (a use after free in
    /// native code would take the test host down), no connection left open, every client sees its connection end.
    /// </summary>
    [Fact]
    public async Task Stopping_the_listener_with_dozens_of_handshakes_in_flight_closes_every_connection()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var stalls = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
        using var dir = new TempDir();
        await using var backend = new ScriptedHttpBackend((_, _) => Task.FromResult<(byte[]?, bool)>((ScriptedHttpBackend.Ok("ok\n"), false)));
        var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? app = null, graceful = null;
        var processes = new List<OpenSslClient>();
        var sockets = new List<TcpClient>();
        try
        {
            PemCertificate.Write(dir.Combine("a.pem"), dir.Combine("a.key"), "a.test", "a.test");
            app = await StartAppAsync("a", "a.test", new IPEndPoint(IPAddress.Loopback, 0), dir, listeners, timeout.Token);
            app.Pool.Add(new Backend("a-1", backend.Endpoint));
            var listener = listeners.TlsListenerOf(app);

            // First a graceful stop, of another app's listener, with handshakes held half way: they finish (a drain does
            // not cut a client mid-handshake), then close at once as idle connections (close_notify), well before the
            // drain's deadline.
            PemCertificate.Write(dir.Combine("b.pem"), dir.Combine("b.key"), "b.test", "b.test");
            graceful = await StartAppAsync("b", "b.test", new IPEndPoint(IPAddress.Loopback, 0), dir, listeners, timeout.Token);
            var gracefulListener = listeners.TlsListenerOf(graceful);
            var release = new TaskCompletionSource();
            var held = Enumerable.Range(0, 8).Select(i => Task.Run(async () =>
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(gracefulListener.Bound, timeout.Token);
                await using var tls = new SslStream(new HeldReads(tcp.GetStream(), release.Task));
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "b.test", EnabledSslProtocols = i % 2 == 0 ? SslProtocols.Tls13 : SslProtocols.Tls12,
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                }, timeout.Token);
                return await tls.ReadAsync(new byte[16], timeout.Token) == 0; // closed, with close_notify
            })).ToArray();
            await Wait.UntilAsync(() => gracefulListener.OpenTlsConnections == 8, TimeSpan.FromSeconds(10), "the held handshakes open", cancellationToken: timeout.Token);
            using (var drain = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
            {
                var stopping = gracefulListener.StopAsync(drain.Token).AsTask();
                release.SetResult();
                await stopping.WaitAsync(TimeSpan.FromSeconds(10), timeout.Token);
                Assert.False(drain.IsCancellationRequested);
            }
            Assert.Equal(0, gracefulListener.OpenTlsConnections);
            Assert.All(await Task.WhenAll(held).WaitAsync(TimeSpan.FromSeconds(10), timeout.Token), Assert.True);

            var handshakes = 0;
            var loopers = Enumerable.Range(0, 12).Select(i => Task.Run(async () =>
            {
                try
                {
                    while (!stalls.IsCancellationRequested)
                    {
                        var (tls, tcp) = await HandshakeAsync(listener.Bound, "a.test", i % 2 == 0 ? SslProtocols.Tls13 : SslProtocols.Tls12, stalls.Token);
                        using (tcp)
                        await using (tls)
                            Interlocked.Increment(ref handshakes);
                    }
                }
                catch (Exception e) when (e is IOException or SocketException or AuthenticationException or OperationCanceledException)
                {
                    // Cut by the stopping listener (or refused once it stopped): expected.
                }
            })).ToArray();

            // Stalled after the ClientHello: the client never reads the server's flight, so never finishes.
            var stalledAfterHello = Enumerable.Range(0, 24).Select(i => Task.Run(async () =>
            {
                var tcp = new TcpClient();
                lock (sockets) sockets.Add(tcp);
                await tcp.ConnectAsync(listener.Bound, timeout.Token);
                var tls = new SslStream(new HeldReads(tcp.GetStream(), Task.Delay(Timeout.Infinite, stalls.Token)));
                try
                {
                    await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                    {
                        TargetHost = "a.test", EnabledSslProtocols = i % 2 == 0 ? SslProtocols.Tls13 : SslProtocols.Tls12,
                        RemoteCertificateValidationCallback = (_, _, _, _) => true,
                    }, stalls.Token);
                }
                catch (OperationCanceledException)
                {
                    // The end of the test: the stall is over.
                }
            })).ToArray();
            // Stalled half way through a ClientHello (a record header announcing 512 bytes, then a few).
            for (var i = 0; i < 12; i++)
            {
                var tcp = new TcpClient();
                sockets.Add(tcp);
                await tcp.ConnectAsync(listener.Bound, timeout.Token);
                await tcp.GetStream().WriteAsync(new byte[] { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 1, 2, 3 }, timeout.Token);
            }
            // Real OpenSSL clients, handshake done, idle on keep-alive.
            for (var i = 0; i < 6; i++)
            {
                var client = OpenSslClient.Start(listener.Bound, "-servername", "a.test", i % 2 == 0 ? "-tls1_3" : "-tls1_2");
                processes.Add(client);
                await client.WriteAsync(Request("/idle"), timeout.Token);
            }
            foreach (var client in processes) await client.WaitForOutputAsync("ok", timeout.Token);

            await Wait.UntilAsync(() => listener.OpenTlsConnections >= 24 + 12 + 6 && Volatile.Read(ref handshakes) >= 24, TimeSpan.FromSeconds(20),
                "the stalled handshakes, the idle clients and the looping handshakes all under way", cancellationToken: timeout.Token);
            await listener.StopAsync(new CancellationToken(canceled: true)).AsTask().WaitAsync(TimeSpan.FromSeconds(10), timeout.Token);
            Assert.Equal(0, listener.OpenTlsConnections);

            foreach (var tcp in sockets.Where(s => s.Connected))
                Assert.True(await ClosedByServerAsync(tcp.Client, timeout.Token), "a stalled client's connection was left open");
            foreach (var client in processes)
                await Wait.UntilAsync(() => client.HasExited, TimeSpan.FromSeconds(10), "an idle s_client to see its connection closed", cancellationToken: timeout.Token);
            stalls.Cancel();
            await Task.WhenAll(loopers).WaitAsync(TimeSpan.FromSeconds(10), timeout.Token);
            await Task.WhenAll(stalledAfterHello).WaitAsync(TimeSpan.FromSeconds(10), timeout.Token);
        }
        finally
        {
            await stalls.CancelAsync();
            foreach (var client in processes) await client.DisposeAsync();
            foreach (var tcp in sockets) tcp.Dispose();
            if (app is not null) await app.DisposeAsync();
            if (graceful is not null) await graceful.DisposeAsync();
            await listeners.DisposeAsync();
        }
    }

    /// <summary>
    /// What s_client writes among the server's bytes: -msg's trace of a record or message (a line starting with &lt;&lt;&lt;
    /// or &gt;&gt;&gt;, then its hex dump lines), and -nbio's "read R BLOCK" for a read that has to wait.
    /// </summary>
    [System.Text.RegularExpressions.GeneratedRegex(@"(<<<|>>>) [^\n]*\n(    [^\n]*\n)*|(read|write) [RWX] BLOCK\n")]
    private static partial System.Text.RegularExpressions.Regex MsgTrace();

    /// <summary>
    /// A TCP relay for one client connection to <c>upstream</c>, whose server-to-client direction can be stopped between
    /// two TLS records: it then reads nothing from the server (a small receive buffer, so the server's sends back up soon), while the
    /// client's bytes keep flowing to the server.
    /// </summary>
    private sealed class PausableRelay : IAsyncDisposable
    {
        private readonly Socket _listening = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly CancellationTokenSource _stop = new();
        private readonly SemaphoreSlim _serverToClient = new(1, 1);
        private readonly Task _relaying;
        private Socket? _server;
        private long _clientToServer;

        public PausableRelay(IPEndPoint upstream)
        {
            _listening.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listening.Listen(1);
            Endpoint = (IPEndPoint)_listening.LocalEndPoint!;
            _relaying = RelayAsync(upstream);
        }

        public IPEndPoint Endpoint { get; }
        public long ClientToServerBytes => Interlocked.Read(ref _clientToServer);
        public long ClientToServerBytesAtPause { get; private set; }
        /// <summary>What the server sent that the relay has not read (its socket's receive queue).</summary>
        public int ServerBytesWaiting => _server?.Available ?? 0;

        public void PauseServerToClient()
        {
            _serverToClient.Wait();
            ClientToServerBytesAtPause = ClientToServerBytes;
        }

        public void ResumeServerToClient() => _serverToClient.Release();

        private async Task RelayAsync(IPEndPoint upstream)
        {
            try
            {
                using var client = await _listening.AcceptAsync(_stop.Token);
                using var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 256 * 1024, NoDelay = true };
                await server.ConnectAsync(upstream, _stop.Token);
                _server = server;
                await Task.WhenAny(PumpAsync(client, server), PumpRecordsAsync(server, client));
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        private async Task PumpAsync(Socket from, Socket to)
        {
            var buffer = new byte[16 * 1024];
            try
            {
                int read;
                while ((read = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token)) > 0)
                {
                    await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, _stop.Token);
                    Interlocked.Add(ref _clientToServer, read);
                }
                to.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        /// <summary>
        /// The server's bytes, a whole TLS record at a time, the pause taking effect between records: s_client with half a
        /// record in its buffer spins reading the socket and never looks at its stdin.
        /// </summary>
        private async Task PumpRecordsAsync(Socket from, Socket to)
        {
            var record = new byte[5 + 18 * 1024];
            try
            {
                while (true)
                {
                    await _serverToClient.WaitAsync(_stop.Token);
                    _serverToClient.Release();
                    if (!await ReceiveExactlyAsync(from, record.AsMemory(0, 5))) break;
                    var length = record[3] << 8 | record[4];
                    if (!await ReceiveExactlyAsync(from, record.AsMemory(5, length))) break;
                    await to.SendAsync(record.AsMemory(0, 5 + length), SocketFlags.None, _stop.Token);
                }
                to.Shutdown(SocketShutdown.Send);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
            }
        }

        private async Task<bool> ReceiveExactlyAsync(Socket from, Memory<byte> into)
        {
            for (var at = 0; at < into.Length;)
            {
                var read = await from.ReceiveAsync(into[at..], SocketFlags.None, _stop.Token);
                if (read == 0) return false;
                at += read;
            }
            return true;
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listening.Dispose();
            await _relaying;
            _stop.Dispose();
        }
    }

    /// <summary>A client's side of a connection whose reads wait for <paramref name="released"/>: its handshake stalls after the ClientHello until then.</summary>
    private sealed class HeldReads(Stream inner, Task released) : Stream
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await released.WaitAsync(cancellationToken);
            return await inner.ReadAsync(buffer, cancellationToken);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);
        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }

    /// <summary>
    /// A client's saved TLS session (`s_client -sess_out`, PEM) rewritten by OpenSSL itself to claim the server allowed
    /// 16 KiB of early data: what a client that sends 0-RTT regardless of the ticket would hold.
    /// </summary>
    private static partial class ClientSession
    {
        [LibraryImport("libcrypto.so.3", StringMarshalling = StringMarshalling.Utf8)] private static partial IntPtr BIO_new_file(string path, string mode);
        [LibraryImport("libcrypto.so.3")] private static partial int BIO_free(IntPtr bio);
        [LibraryImport("libssl.so.3")] private static partial IntPtr PEM_read_bio_SSL_SESSION(IntPtr bio, IntPtr session, IntPtr callback, IntPtr arg);
        [LibraryImport("libssl.so.3")] private static partial int PEM_write_bio_SSL_SESSION(IntPtr bio, IntPtr session);
        [LibraryImport("libssl.so.3")] private static partial int SSL_SESSION_set_max_early_data(IntPtr session, uint maxEarlyData);
        [LibraryImport("libssl.so.3")] private static partial void SSL_SESSION_free(IntPtr session);

        public static void AllowEarlyData(string from, string to)
        {
            var input = BIO_new_file(from, "r");
            Assert.NotEqual(IntPtr.Zero, input);
            var session = PEM_read_bio_SSL_SESSION(input, IntPtr.Zero, IntPtr.Zero, IntPtr.Zero);
            BIO_free(input);
            Assert.NotEqual(IntPtr.Zero, session);
            try
            {
                Assert.Equal(1, SSL_SESSION_set_max_early_data(session, 16384));
                var output = BIO_new_file(to, "w");
                Assert.NotEqual(IntPtr.Zero, output);
                Assert.Equal(1, PEM_write_bio_SSL_SESSION(output, session));
                BIO_free(output);
            }
            finally
            {
                SSL_SESSION_free(session);
            }
        }
    }

    /// <summary>Whether the server closes the socket (reset or FIN, after whatever it still sends) within 10 s.</summary>
    private static async Task<bool> ClosedByServerAsync(Socket socket, CancellationToken cancellationToken)
    {
        using var within = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        within.CancelAfter(TimeSpan.FromSeconds(10));
        var buffer = new byte[4096];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, within.Token) > 0) { }
            return true;
        }
        catch (SocketException)
        {
            return true; // a reset: closed all the same
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return false;
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
