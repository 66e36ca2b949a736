using System.Diagnostics;
using System.Net;
using System.Text;
using Cutover.Config;
using Cutover.Proxy;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Proxy;

/// <summary>
/// The HTTP/1.1 fast path (Proxy/Http1/) end to end: a real listener and app (ProxyListeners, ProxyServer) in front of
/// a raw TCP instance that records the bytes it receives, and a raw client on one connection. Each test also reads
/// the listener's counts, so it proves the fast path (not Kestrel + YARP) served what it checks, or handed over.
/// </summary>
public class Http1FastPathTests
{
    private sealed class Bed : IAsyncDisposable
    {
        public required ProxyListeners Listeners { get; init; }
        public required ProxyServer App { get; init; }
        public required ScriptedHttpBackend Backend { get; init; }
        public required Listener Listener { get; init; }
        /// <summary>The proxy's side of the instance: its in-flight count is what draining waits on.</summary>
        public required Backend Instance { get; init; }
        public IPEndPoint Address => App.Listen;

        public static async Task<Bed> StartAsync(ScriptedHttpBackend.Responder respond, Func<ProxyConfig, ProxyConfig>? configure = null)
        {
            var listeners = new ProxyListeners(NullLoggerFactory.Instance);
            var config = new ProxyConfig { Listen = new IPEndPoint(IPAddress.Loopback, 0), Hosts = ["shop.test"] };
            var app = await ProxyServer.StartAsync("shop", configure?.Invoke(config) ?? config, listeners, NullLoggerFactory.Instance, CancellationToken.None);
            var backend = new ScriptedHttpBackend(respond);
            var instance = new Backend("shop-1", backend.Endpoint);
            app.Pool.Add(instance);
            return new Bed { Listeners = listeners, App = app, Backend = backend, Instance = instance, Listener = listeners.PlainListenerOf(app) };
        }

        public async ValueTask DisposeAsync()
        {
            await App.DisposeAsync();
            await Listeners.DisposeAsync();
            await Backend.DisposeAsync();
        }
    }

    private static Task<(byte[]?, bool)> Answer(byte[] response, bool close = false) => Task.FromResult<(byte[]?, bool)>((response, close));

    private static string Get(string path, string extra = "") => $"GET {path} HTTP/1.1\r\nHost: shop.test\r\n{extra}\r\n";

    [Fact]
    public async Task Keep_alive_and_pipelined_requests_share_one_upstream_connection_with_forwarded_headers_and_no_hop_by_hop_ones()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var logs = new TempDir();
        await using var bed = await Bed.StartAsync((request, _) =>
            Answer(ScriptedHttpBackend.Ok(request.RequestLine.Split(' ')[1] + ":" + request.Body.Length, "Connection: keep-alive, X-Internal\r\nX-Internal: secret\r\nKeep-Alive: timeout=5\r\nX-App: 1\r\n")));
        using var accessLog = new Cutover.Logging.RotatingLogFile(logs.Combine("access.log"), logs.Combine("access-"), 1 << 20, 1);
        bed.App.AccessLog = accessLog;
        using var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token);

        await client.SendAsync(Get("/a?x=1", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.test\r\nForwarded: for=6.6.6.6\r\n"
                                             + "Connection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: 300\r\nTE: trailers\r\nProxy-Connection: keep-alive\r\nX-Keep: k\r\n"), timeout.Token);
        var first = await client.ReadAsync(timeout.Token);
        Assert.Equal(200, first!.Status);
        Assert.Equal("/a?x=1:0", first.Body);
        Assert.Equal(["1"], first.Values("X-App"));
        Assert.Empty(first.Values("Connection"));
        Assert.Empty(first.Values("Keep-Alive"));
        Assert.Empty(first.Values("X-Internal"));

        // Three requests in one write, one with a body: answered in order.
        await client.SendAsync(Get("/b") + Get("/c") + "POST /d HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 5\r\n\r\nhello", timeout.Token);
        Assert.Equal("/b:0", (await client.ReadAsync(timeout.Token))!.Body);
        Assert.Equal("/c:0", (await client.ReadAsync(timeout.Token))!.Body);
        Assert.Equal("/d:5", (await client.ReadAsync(timeout.Token))!.Body);

        Assert.Equal(1, bed.Backend.Connections);
        var requests = bed.Backend.Requests.ToArray();
        Assert.Equal(["GET /a?x=1 HTTP/1.1", "GET /b HTTP/1.1", "GET /c HTTP/1.1", "POST /d HTTP/1.1"], requests.Select(r => r.RequestLine));
        var forwarded = requests[0];
        Assert.Equal(["shop.test"], forwarded.Values("Host"));
        Assert.Equal(["127.0.0.1"], forwarded.Values("X-Forwarded-For"));  // the client is not a trusted proxy
        Assert.Equal(["http"], forwarded.Values("X-Forwarded-Proto"));
        Assert.Equal(["shop.test"], forwarded.Values("X-Forwarded-Host"));
        Assert.Equal(["k"], forwarded.Values("X-Keep"));
        foreach (var hopByHop in new[] { "Connection", "X-Secret", "Keep-Alive", "TE", "Proxy-Connection", "Forwarded" })
            Assert.Empty(forwarded.Values(hopByHop));
        Assert.Equal("hello", Encoding.ASCII.GetString(requests[3].Body));
        await Wait.UntilAsync(() => bed.App.Served == 4, TimeSpan.FromSeconds(5), "four responses counted as served"); // counted just after the flush

        client.Dispose();
        await Wait.UntilAsync(() => bed.Listener.FastPathRequests == 4, TimeSpan.FromSeconds(5), "the fast path counted its four requests");
        Assert.Equal(0, bed.Listener.HandedOver);
        var lines = await File.ReadAllLinesAsync(accessLog.CurrentPath, timeout.Token);
        Assert.Equal(4, lines.Length);
        Assert.Matches(@"^\S+Z \S*127\.0\.0\.1 ""GET /a\?x=1 HTTP/1\.1"" 200 \d+\.\dms$", lines[0]);
    }

    [Fact]
    public async Task A_trusted_peer_keeps_its_forwarded_headers_and_a_chunked_response_and_a_streamed_body_pass_through_intact()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        const string chunked = "4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\nX-Trailer: 1\r\n\r\n";
        await using var bed = await Bed.StartAsync((request, _) => Answer(request.RequestLine.StartsWith("POST")
                ? ScriptedHttpBackend.Ok($"{request.Body.Length}")
                : Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)),
            c => c with { TrustedProxies = [IPNetwork.Parse("127.0.0.0/8")] });
        using var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token);

        await client.SendAsync(Get("/wiki", "X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: www.shop.test\r\nForwarded: for=6.6.6.6\r\n"), timeout.Token);
        var response = await client.ReadAsync(timeout.Token);
        Assert.Equal("wikipedia", response!.Body);
        Assert.EndsWith("\r\n\r\n" + chunked, response.Raw); // chunk sizes, extension and trailer exactly as the instance sent them
        var forwarded = bed.Backend.Requests.Single();
        Assert.Equal(["6.6.6.6, 127.0.0.1"], forwarded.Values("X-Forwarded-For"));
        Assert.Equal(["https"], forwarded.Values("X-Forwarded-Proto"));
        Assert.Equal(["www.shop.test"], forwarded.Values("X-Forwarded-Host"));
        Assert.Equal(["for=6.6.6.6"], forwarded.Values("Forwarded"));

        // A body larger than what travels with the head: streamed from the client's pipe, every byte.
        var body = new byte[300_000];
        new Random(7).NextBytes(body);
        await client.SendAsync(Encoding.ASCII.GetBytes($"POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: {body.Length}\r\n\r\n").Concat(body).ToArray(), timeout.Token);
        Assert.Equal($"{body.Length}", (await client.ReadAsync(timeout.Token))!.Body);
        Assert.Equal(body, bed.Backend.Requests.Last().Body);

        // A head larger than a pipe segment (4 KiB) is parsed across segments.
        var cookie = new string('c', 6000);
        await client.SendAsync(Get("/big-head", $"Cookie: {cookie}\r\n"), timeout.Token);
        Assert.Equal("wikipedia", (await client.ReadAsync(timeout.Token))!.Body);
        Assert.Equal([cookie], bed.Backend.Requests.Last().Values("Cookie"));
        Assert.Equal(1, bed.Backend.Connections);

        client.Dispose();
        await Wait.UntilAsync(() => bed.Listener.FastPathRequests == 3, TimeSpan.FromSeconds(5), "the fast path counted its three requests");
    }

    [Fact]
    public async Task A_pooled_connection_the_instance_closed_is_retried_on_a_fresh_one_and_a_malformed_response_is_a_502_whose_connection_is_dropped()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var answered = 0;
        await using var bed = await Bed.StartAsync((request, _) =>
        {
            var n = Interlocked.Increment(ref answered);
            return request.RequestLine switch
            {
                // Keep-alive by its head, closed right after: the proxy pools a connection that is already gone.
                var l when l.Contains("/closing") => Answer(ScriptedHttpBackend.Ok("closing"), close: true),
                var l when l.Contains("/garbage") => Answer(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 2\r\n\r\nok")),
                _ => Answer(ScriptedHttpBackend.Ok($"fine {n}")),
            };
        });
        using var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token);

        await client.SendAsync(Get("/closing"), timeout.Token);
        Assert.Equal(200, (await client.ReadAsync(timeout.Token))!.Status);
        await client.SendAsync(Get("/after-close"), timeout.Token);
        Assert.Equal(200, (await client.ReadAsync(timeout.Token))!.Status);
        // A small POST travels with its head, so it too can be sent again on a fresh connection.
        await client.SendAsync(Get("/closing"), timeout.Token);
        Assert.Equal(200, (await client.ReadAsync(timeout.Token))!.Status);
        await client.SendAsync("POST /post-after-close HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 2\r\n\r\nhi", timeout.Token);
        Assert.Equal(200, (await client.ReadAsync(timeout.Token))!.Status);
        Assert.Equal(0, bed.App.Failed);
        Assert.Equal(3, bed.Backend.Connections);

        await client.SendAsync(Get("/garbage"), timeout.Token);
        var bad = await client.ReadAsync(timeout.Token);
        Assert.Equal(502, bad!.Status);
        Assert.Equal(1, bed.App.Failed);
        await client.SendAsync(Get("/next"), timeout.Token);
        Assert.Equal(200, (await client.ReadAsync(timeout.Token))!.Status); // the client's connection goes on
        Assert.Equal(4, bed.Backend.Connections); // the one that answered garbage was not reused

        client.Dispose();
        await Wait.UntilAsync(() => bed.Listener.FastPathRequests == 6, TimeSpan.FromSeconds(5), "the fast path counted its six requests");
    }

    /// <summary>
    /// A response without a length ends when the instance closes. Sent with its close in one go, both reach the proxy's
    /// socket before its loop looks: one edge for the data and the end. Each must end at once (before EpollSocket's
    /// Ended bit, the short read of the data left the end unread and unannounced, and such a response hung until a timeout).
    /// </summary>
    [Fact]
    public async Task A_response_that_the_instance_ends_by_closing_right_behind_it_ends_at_once_every_time()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        using var origin = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        origin.Start();
        var serving = Task.Run(async () =>
        {
            var n = 0;
            try
            {
                while (true)
                {
                    using var socket = await origin.AcceptSocketAsync(timeout.Token);
                    var buffer = new byte[4096];
                    var got = 0;
                    while (Encoding.ASCII.GetString(buffer, 0, got).IndexOf("\r\n\r\n", StringComparison.Ordinal) < 0)
                    {
                        var read = await socket.ReceiveAsync(buffer.AsMemory(got), timeout.Token);
                        if (read == 0) break;
                        got += read;
                    }
                    socket.Send(Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil-close-{++n}"));
                    socket.Shutdown(System.Net.Sockets.SocketShutdown.Both);
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        await using var bed = await Bed.StartAsync((_, _) => Answer(ScriptedHttpBackend.Ok("unused")));
        bed.App.Pool.Remove(bed.Instance);
        bed.App.Pool.Add(new Backend("origin-1", (IPEndPoint)origin.LocalEndpoint));

        for (var i = 1; i <= 200; i++)
        {
            using var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token);
            await client.SendAsync(Get($"/{i}"), timeout.Token);
            using var each = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
            each.CancelAfter(TimeSpan.FromSeconds(10));
            var response = await client.ReadAsync(each.Token);
            Assert.Equal(200, response!.Status);
            Assert.Equal($"until-close-{i}", response.Body);
        }
        await timeout.CancelAsync();
        await serving;
    }

    [Fact]
    public async Task A_request_the_fast_path_does_not_do_is_handed_to_Kestrel_on_the_same_connection_which_then_serves_on()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var bed = await Bed.StartAsync((request, _) => Answer(ScriptedHttpBackend.Ok("from the app")));
        using var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token);

        await client.SendAsync(Get("/one"), timeout.Token);
        Assert.Equal("from the app", (await client.ReadAsync(timeout.Token))!.Body);
        await client.SendAsync(Get("/two"), timeout.Token);
        Assert.Equal("from the app", (await client.ReadAsync(timeout.Token))!.Body);

        bed.App.Gate.SetMaintenance(MaintenancePage.FromMessage("back soon"));
        await client.SendAsync(Get("/three"), timeout.Token);
        var page = await client.ReadAsync(timeout.Token);
        Assert.Equal(503, page!.Status);
        Assert.Equal("back soon\n", page.Body);
        Assert.Equal(["30"], page.Values("Retry-After"));

        bed.App.Gate.SetMaintenance(null);
        await client.SendAsync(Get("/four"), timeout.Token);
        Assert.Equal("from the app", (await client.ReadAsync(timeout.Token))!.Body);
        Assert.Equal(["GET /one HTTP/1.1", "GET /two HTTP/1.1", "GET /four HTTP/1.1"], bed.Backend.Requests.Select(r => r.RequestLine));
        Assert.Equal(1, bed.Listener.HandedOver);

        client.Dispose();
        await Wait.UntilAsync(() => bed.Listener.FastPathRequests == 2, TimeSpan.FromSeconds(5), "the fast path counted the two requests before the hand-over");
    }

    [Fact]
    public async Task An_instance_that_does_not_answer_in_time_is_a_504_and_a_malformed_request_a_400_that_never_reaches_it()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var bed = await Bed.StartAsync(async (request, cancellationToken) =>
        {
            if (request.RequestLine.Contains("/slow")) await Task.Delay(Timeout.Infinite, cancellationToken);
            return (ScriptedHttpBackend.Ok("quick"), false);
        }, c => c with { ResponseTimeout = TimeSpan.FromMilliseconds(300) });
        using var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token);

        await client.SendAsync(Get("/slow"), timeout.Token);
        var late = await client.ReadAsync(timeout.Token);
        Assert.Equal(504, late!.Status);
        Assert.Equal(ForwardingRules.TimedOut(TimeSpan.FromMilliseconds(300)), late.Body);
        Assert.Equal(1, bed.App.TimedOut);
        await client.SendAsync(Get("/quick"), timeout.Token);
        Assert.Equal("quick", (await client.ReadAsync(timeout.Token))!.Body);

        // Two Content-Lengths: a smuggling attempt. 400, closed, and the instance sees neither it nor what hid in it.
        var requestsBefore = bed.Backend.Requests.Count;
        await client.SendAsync("POST /smuggle HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 0\r\nContent-Length: 29\r\n\r\nGET /hidden HTTP/1.1\r\nHost: x\r\n\r\n", timeout.Token);
        var refused = await client.ReadAsync(timeout.Token);
        Assert.Equal(400, refused!.Status);
        Assert.Equal(["close"], refused.Values("Connection"));
        Assert.True(await client.ClosedAsync(timeout.Token));
        Assert.Equal(requestsBefore, bed.Backend.Requests.Count);
        Assert.Equal(0, bed.Listener.HandedOver);
    }
    /// <summary>
    /// response_timeout is per request, though its timer is not (Platform/LazyDeadline: set per request with a write, the
    /// runtime's timer moved only when it must fire sooner). Requests on one keep-alive connection that each take
    /// a good part of the timeout, together far more than it: none is a 504, whatever the timer set for an earlier one finds when it
    /// fires. Then a slow one still is. The margins (700 ms of a 3 s timeout) hold on a loaded 2-core machine; with
    /// 250 ms of a 600 ms one, a first request that waited for the JIT while the whole suite ran met its 504; with 700 ms of 2 s, a test spinning two pool threads delayed the app by 2.9 s.
    /// </summary>
    [Fact]
    public async Task Each_request_gets_the_whole_response_timeout_however_long_the_connection_has_been_busy()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var delays = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var bed = await Bed.StartAsync(async (request, cancellationToken) =>
        {
            var path = request.RequestLine.Split(' ')[1];
            var began = Stopwatch.GetTimestamp();
            await Task.Delay(path == "/slow" ? 5000 : path == "/warm" ? 0 : 700, cancellationToken);
            delays.Enqueue($"{path} {Stopwatch.GetElapsedTime(began).TotalMilliseconds:F0} ms");
            return (ScriptedHttpBackend.Ok("done"), false);
        }, c => c with { ResponseTimeout = TimeSpan.FromSeconds(3) });
        using var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token);
        // The path warmed up (JIT, the upstream connection) by a request that takes no time of its own.
        await client.SendAsync(Get("/warm"), timeout.Token);
        Assert.Equal(200, (await client.ReadAsync(timeout.Token))!.Status);

        // Seven requests of 700 ms behind a 3 s timeout, back to back and with pauses between them: 4.9 s in all.
        for (var i = 0; i < 7; i++)
        {
            var sent = Stopwatch.GetTimestamp();
            await client.SendAsync(Get($"/r{i}"), timeout.Token);
            var response = await client.ReadAsync(timeout.Token);
            Assert.True(response!.Status == 200, $"request {i}: {response.Status} {response.Body} after {Stopwatch.GetElapsedTime(sent).TotalMilliseconds:F0} ms; the app's delays: {string.Join(", ", delays)}");
            if (i % 3 == 2) await Task.Delay(1000, timeout.Token);
        }
        Assert.Equal(0, bed.App.TimedOut);

        await client.SendAsync(Get("/slow"), timeout.Token);
        Assert.Equal(504, (await client.ReadAsync(timeout.Token))!.Status);
        Assert.Equal(1, bed.App.TimedOut);
        client.Dispose();
        await Wait.UntilAsync(() => bed.Listener.FastPathRequests == 9, TimeSpan.FromSeconds(5), "the fast path counted its nine requests");
        Assert.Equal(0, bed.Listener.HandedOver);
    }

    [Fact]
    public async Task A_body_that_stops_moving_either_way_is_cut_at_activity_timeout_on_both_sides_and_its_upstream_connection_is_not_pooled()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        const int Huge = 64 << 20; // more than the socket buffers and pipes between the instance and a client that does not read
        await using var bed = await Bed.StartAsync((request, _) => Answer(request.RequestLine switch
            {
                var l when l.Contains("/stall") => Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + new string('x', 50)),
                var l when l.Contains("/huge") => [.. Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {Huge}\r\n\r\n"), .. new byte[Huge]],
                _ => ScriptedHttpBackend.Ok("fine"),
            }),
            c => c with { ActivityTimeout = TimeSpan.FromMilliseconds(400) });

        // The instance sends its head and half its body, then nothing: well before response_timeout (60 s), both
        // connections close; the client gets what was sent and then the cut, never a complete-looking response.
        using (var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token))
        {
            await client.SendAsync(Get("/stall"), timeout.Token);
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
            bound.CancelAfter(TimeSpan.FromSeconds(5));
            var cut = await Record.ExceptionAsync(() => client.ReadAsync(bound.Token));
            Assert.True(cut is IOException or System.Net.Sockets.SocketException, $"the client's connection was cut mid-body, got {cut?.GetType().Name ?? "a response"}");
        }
        await Wait.UntilAsync(() => bed.Backend.ClosedConnections == 1, TimeSpan.FromSeconds(5), "the proxy to close the stalled upstream connection");
        await Wait.UntilAsync(() => bed.Instance.InFlight == 0, TimeSpan.FromSeconds(5), "nothing in flight at the instance");

        // The client sends a head and part of a streamed body, then nothing: the same cut, and the instance's
        // connection (waiting for the rest of the body) is closed too.
        using (var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token))
        {
            await client.SendAsync("POST /upload HTTP/1.1\r\nHost: shop.test\r\nContent-Length: 100000\r\n\r\n" + new string('y', 20_000), timeout.Token);
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
            bound.CancelAfter(TimeSpan.FromSeconds(5));
            Assert.True(await client.ClosedAsync(bound.Token));
        }
        await Wait.UntilAsync(() => bed.Backend.ClosedConnections == 2, TimeSpan.FromSeconds(5), "the proxy to close the upstream connection of the stalled upload");
        await Wait.UntilAsync(() => bed.Instance.InFlight == 0, TimeSpan.FromSeconds(5), "nothing in flight at the instance");

        // A client that stops reading a large response: it stops moving too, the same cut, and the instance (still
        // sending) sees its connection closed.
        using (var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token))
        {
            await client.SendAsync(Get("/huge"), timeout.Token);
            await Wait.UntilAsync(() => bed.Backend.Requests.Any(r => r.RequestLine.Contains("/huge")), TimeSpan.FromSeconds(5), "the large request at the instance");
            var huge = bed.Backend.Requests.Single(r => r.RequestLine.Contains("/huge")).Connection;
            await Wait.UntilAsync(() => bed.Backend.HasClosed(huge), TimeSpan.FromSeconds(10), "the proxy to cut the response its client stopped reading");
        }
        await Wait.UntilAsync(() => bed.Instance.InFlight == 0, TimeSpan.FromSeconds(5), "nothing in flight at the instance");

        // The next request opens a fresh upstream connection: no cut one went back to the pool.
        using (var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token))
        {
            await client.SendAsync(Get("/fine"), timeout.Token);
            Assert.Equal("fine", (await client.ReadAsync(timeout.Token))!.Body);
        }
        Assert.Equal(4, bed.Backend.Connections);
        Assert.Equal(0, bed.Listener.HandedOver);

        // The same key bounds the YARP path (an HTTP/1.0 request is handed to Kestrel): the same cut.
        using (var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token))
        {
            await client.SendAsync("GET /stall HTTP/1.0\r\nHost: shop.test\r\n\r\n", timeout.Token);
            using var bound = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
            bound.CancelAfter(TimeSpan.FromSeconds(5));
            var cut = await Record.ExceptionAsync(() => client.ReadAsync(bound.Token));
            Assert.True(cut is IOException or System.Net.Sockets.SocketException, $"the client's connection was cut mid-body, got {cut?.GetType().Name ?? "a response"}");
        }
        Assert.Equal(1, bed.Listener.HandedOver);
        var yarps = bed.Backend.Requests.Last().Connection;
        await Wait.UntilAsync(() => bed.Backend.HasClosed(yarps), TimeSpan.FromSeconds(5), "YARP to close the stalled upstream connection");
        await Wait.UntilAsync(() => bed.Instance.InFlight == 0, TimeSpan.FromSeconds(5), "nothing in flight at the instance");
    }
    [Fact]
    public async Task A_client_that_leaves_while_the_app_works_on_its_answer_closes_the_upstream_connection_and_leaves_nothing_in_flight()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var certificates = new TempDir();
        var (certFile, keyFile) = (certificates.Combine("shop.pem"), certificates.Combine("shop.key"));
        PemCertificate.Write(certFile, keyFile, "shop.test", "shop.test");
        await using var bed = await Bed.StartAsync(async (request, cancellationToken) =>
        {
            if (request.RequestLine.Contains("/slow")) await Task.Delay(TimeSpan.FromSeconds(10), cancellationToken);
            if (request.RequestLine.Contains("/pause")) await Task.Delay(TimeSpan.FromMilliseconds(300), cancellationToken);
            return (ScriptedHttpBackend.Ok(request.RequestLine.Split(' ')[1]), false);
        }, c => c with { Tls = new TlsConfig { Listen = new IPEndPoint(IPAddress.Loopback, 0), CertFile = certFile, KeyFile = keyFile, RedirectHttp = false } });

        // Pipelining: the next request arriving while the proxy waits for an answer is not the client leaving.
        using (var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token))
        {
            await client.SendAsync(Get("/pause"), timeout.Token);
            await Task.Delay(100, timeout.Token);
            await client.SendAsync(Get("/next"), timeout.Token);
            Assert.Equal("/pause", (await client.ReadAsync(timeout.Token))!.Body);
            Assert.Equal("/next", (await client.ReadAsync(timeout.Token))!.Body);
            Assert.Equal(0, bed.Backend.ClosedConnections);
        }

        // A long poll whose client goes away after 200 ms: the proxy closes the instance's connection then, not
        // when the answer comes 10 s later, and the request is no longer in flight (a drain would wait for it).
        using (var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token))
        {
            await client.SendAsync(Get("/slow"), timeout.Token);
            await Wait.UntilAsync(() => bed.Instance.InFlight == 1, TimeSpan.FromSeconds(5), "the long poll in flight");
            await Task.Delay(200, timeout.Token);
        }
        await Wait.UntilAsync(() => bed.Backend.ClosedConnections == 1, TimeSpan.FromSeconds(3), "the instance to see its connection closed");
        await Wait.UntilAsync(() => bed.Instance.InFlight == 0, TimeSpan.FromSeconds(3), "nothing in flight at the instance");

        // The same over TLS, where the fast path reads the client through the TLS layer: the close is seen as soon.
        using (var tcp = new System.Net.Sockets.TcpClient())
        {
            await tcp.ConnectAsync(bed.Listeners.TlsListenerOf(bed.App).Bound, timeout.Token);
            await using var tls = new System.Net.Security.SslStream(tcp.GetStream());
            await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
            {
                TargetHost = "shop.test",
                ApplicationProtocols = [System.Net.Security.SslApplicationProtocol.Http11],
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            }, timeout.Token);
            await tls.WriteAsync(Encoding.ASCII.GetBytes(Get("/slow")), timeout.Token);
            await Wait.UntilAsync(() => bed.Instance.InFlight == 1, TimeSpan.FromSeconds(5), "the long poll over TLS in flight");
            await Task.Delay(200, timeout.Token);
        }
        await Wait.UntilAsync(() => bed.Backend.ClosedConnections == 2, TimeSpan.FromSeconds(3), "the instance to see the TLS client's request closed");
        await Wait.UntilAsync(() => bed.Instance.InFlight == 0, TimeSpan.FromSeconds(3), "nothing in flight at the instance");
        Assert.Equal(0, bed.Listener.HandedOver + bed.Listeners.TlsListenerOf(bed.App).HandedOver);
    }
    [Fact]
    public async Task A_chunked_request_body_is_relayed_on_the_fast_path_to_its_last_chunk_and_a_broken_one_is_a_400_the_instance_never_sees_past()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await using var bed = await Bed.StartAsync((request, _) =>
            Answer(ScriptedHttpBackend.Ok($"{request.RequestLine.Split(' ')[1]}:{Encoding.ASCII.GetString(request.Body)}")));
        using var client = await RawHttpClient.ConnectAsync(bed.Address, timeout.Token);

        // Chunks split across writes, an extension and a trailer, and the next request right behind the last chunk.
        await client.SendAsync("POST /chunked HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhel", timeout.Token);
        await Task.Delay(50, timeout.Token);
        await client.SendAsync("lo\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: 1\r\n\r\n" + Get("/after"), timeout.Token);
        Assert.Equal("/chunked:hello world", (await client.ReadAsync(timeout.Token))!.Body);
        Assert.Equal("/after:", (await client.ReadAsync(timeout.Token))!.Body);
        var relayed = bed.Backend.Requests.First();
        Assert.Equal(["chunked"], relayed.Values("Transfer-Encoding"));
        Assert.Empty(relayed.Values("Content-Length"));
        Assert.Equal(1, bed.Backend.Connections);

        // A chunk not ended by CRLF: what came before it went to the instance, nothing after; the client gets a 400 and
        // its connection closes, and the instance's connection is closed, so the request hidden behind never arrives.
        await client.SendAsync("POST /broken HTTP/1.1\r\nHost: shop.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" + Get("/hidden"), timeout.Token);
        var refused = await client.ReadAsync(timeout.Token);
        Assert.Equal(400, refused!.Status);
        Assert.Equal(["close"], refused.Values("Connection"));
        Assert.True(await client.ClosedAsync(timeout.Token));
        await Wait.UntilAsync(() => bed.Backend.ClosedConnections == 1, TimeSpan.FromSeconds(5), "the instance's connection of the broken body closed");
        Assert.Equal(["POST /chunked HTTP/1.1", "GET /after HTTP/1.1"], bed.Backend.Requests.Select(r => r.RequestLine));
        Assert.Equal(0, bed.Listener.HandedOver);
        Assert.Equal(0, bed.Instance.InFlight);
    }
}
