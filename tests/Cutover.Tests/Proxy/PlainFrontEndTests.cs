using System.Net;
using System.Net.Sockets;
using System.Text;
using Cutover.Config;
using Cutover.Proxy;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Proxy;

/// <summary>
/// Plain listeners accept themselves (Proxy/PlainFrontEnd) and give Kestrel's HTTP pipeline only what the fast path
/// hands over, as TLS listeners do (TlsHandshakeTests).
/// </summary>
public class PlainFrontEndTests
{
    /// <summary>
    /// On one real listener: a head that arrives a byte at a time served by the fast path, the connection kept; an
    /// HTTP/1.0 request handed to Kestrel's pipeline on its connection; every connection counted while open (the front
    /// end's own, not Kestrel's) and forgotten once its client left, whether it closed, reset mid-head or never sent a
    /// byte; an idle keep-alive connection closed when the listener stops.
    /// </summary>
    [Fact]
    public async Task A_plain_listener_accepts_itself_serves_the_fast_path_hands_kestrel_the_rest_and_forgets_every_closed_connection()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? app = null;
        try
        {
            app = await ProxyServer.StartAsync("site", new ProxyConfig { Listen = new IPEndPoint(IPAddress.Loopback, 0), Hosts = ["a.test"] },
                listeners, NullLoggerFactory.Instance, timeout.Token);
            var listener = listeners.PlainListenerOf(app);

            // The head a byte per segment; the app has no instance: the fast path's own 503 (no Date: Kestrel did not write it).
            using var kept = new TcpClient { NoDelay = true };
            await kept.ConnectAsync(listener.Bound, timeout.Token);
            foreach (var b in Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"))
            {
                await kept.GetStream().WriteAsync(new[] { b }, timeout.Token);
                await Task.Delay(1, timeout.Token);
            }
            var fastPath = await ReadResponseAsync(kept.GetStream(), timeout.Token);
            Assert.StartsWith("HTTP/1.1 503 ", fastPath);
            Assert.DoesNotContain("\r\nDate:", fastPath);

            // HTTP/1.0 is Kestrel's: handed over on its connection, Kestrel's pipeline answers (with its Date) and closes.
            var handedBefore = listener.HandedOver;
            using (var old = new TcpClient())
            {
                await old.ConnectAsync(listener.Bound, timeout.Token);
                await old.GetStream().WriteAsync("GET / HTTP/1.0\r\nHost: a.test\r\n\r\n"u8.ToArray(), timeout.Token);
                var kestrel = await ReadResponseAsync(old.GetStream(), timeout.Token);
                Assert.StartsWith("HTTP/1.1 503 ", kestrel);
                Assert.Contains("\r\nDate:", kestrel);
            }
            Assert.Equal(handedBefore + 1, listener.HandedOver);

            // Three more: one that never sends, one that leaves mid-head, one that resets mid-head. Counted while open...
            var silent = new TcpClient();
            var leaver = new TcpClient();
            var resetter = new TcpClient();
            foreach (var client in new[] { silent, leaver, resetter }) await client.ConnectAsync(listener.Bound, timeout.Token);
            await leaver.GetStream().WriteAsync("GET / HT"u8.ToArray(), timeout.Token);
            await resetter.GetStream().WriteAsync("GET / HTTP/1.1\r\nHo"u8.ToArray(), timeout.Token);
            await Wait.UntilAsync(() => listener.OpenPlainConnections == 4, TimeSpan.FromSeconds(10), "the kept connection and the three new ones open", cancellationToken: timeout.Token);
            // ... and forgotten once gone.
            resetter.Client.LingerState = new LingerOption(true, 0);
            foreach (var client in new[] { silent, leaver, resetter }) client.Dispose();
            if (!await Wait.WithinAsync(() => listener.OpenPlainConnections == 1, TimeSpan.FromSeconds(10), cancellationToken: timeout.Token))
                Assert.Fail($"waited 10 s for only the kept connection open; open: {listener.DescribeOpenPlainConnections()}");

            // The kept keep-alive connection still serves, then is closed when the listener stops (its last app leaves).
            await kept.GetStream().WriteAsync("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"u8.ToArray(), timeout.Token);
            Assert.StartsWith("HTTP/1.1 503 ", await ReadResponseAsync(kept.GetStream(), timeout.Token));
            await app.DisposeAsync();
            app = null;
            Assert.Equal(0, await kept.GetStream().ReadAsync(new byte[64], timeout.Token));
            Assert.Equal(0, listener.OpenPlainConnections);
        }
        finally
        {
            if (app is not null) await app.DisposeAsync();
            await listeners.DisposeAsync();
        }
    }

    /// <summary>One response: its head, then its Content-Length body (or what comes until the server closes).</summary>
    private static async Task<string> ReadResponseAsync(NetworkStream stream, CancellationToken cancellationToken)
    {
        var received = new MemoryStream();
        var buffer = new byte[4096];
        while (true)
        {
            var text = Encoding.ASCII.GetString(received.ToArray());
            var headEnd = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (headEnd >= 0)
            {
                var length = System.Text.RegularExpressions.Regex.Match(text[..headEnd], @"(?im)^content-length:\s*(\d+)");
                if (length.Success && received.Length >= headEnd + 4 + int.Parse(length.Groups[1].Value)) return text;
            }
            var read = await stream.ReadAsync(buffer, cancellationToken);
            if (read == 0) return text;
            received.Write(buffer, 0, read);
        }
    }
}
