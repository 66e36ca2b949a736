using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Cutover.Tests.Support;

/// <summary>
/// A raw TCP HTTP/1.1 backend on loopback for proxy tests that must see exactly what the proxy sent: it records every
/// byte it receives and parses requests out of them the way a lenient origin would (Transfer-Encoding chunked wins
/// over Content-Length, any other framing by Content-Length), answering each complete request with a fixed small
/// response on a kept-alive connection. So a request smuggled past the proxy shows up here as one more request.
/// </summary>
public sealed class RawHttpBackend : IAsyncDisposable
{
    /// <summary>One complete request as this backend parsed it.</summary>
    public sealed record Request(string Method, string Target, string Version, IReadOnlyList<(string Name, string Value)> Headers, byte[] Body)
    {
        public IEnumerable<string> Values(string name) =>
            Headers.Where(h => h.Name.Equals(name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value);
        public override string ToString() => $"{Method} {Target} {Version} [{string.Join(", ", Headers.Select(h => $"{h.Name}: {h.Value}"))}] {Body.Length} body bytes";
    }

    /// <summary>What the backend had received at one moment: every byte on every connection, and the requests complete.</summary>
    public sealed record Snapshot(long Bytes, int Requests);

    public const string ResponseBody = "backend-ok";
    private static readonly byte[] Response = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {ResponseBody.Length}\r\nContent-Type: text/plain\r\n\r\n{ResponseBody}");

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;
    private readonly List<Task> _connections = [];
    private readonly Lock _gate = new();
    private readonly List<Request> _requests = [];
    private long _bytes;

    public RawHttpBackend()
    {
        _listener.Start();
        Endpoint = (IPEndPoint)_listener.LocalEndpoint;
        _accepting = AcceptAsync(_stop.Token);
    }

    public IPEndPoint Endpoint { get; }

    public Snapshot Now()
    {
        lock (_gate) return new Snapshot(Interlocked.Read(ref _bytes), _requests.Count);
    }

    /// <summary>The complete requests received since <paramref name="since"/> was taken.</summary>
    public IReadOnlyList<Request> RequestsSince(Snapshot since)
    {
        lock (_gate) return _requests.Skip(since.Requests).ToList();
    }

    private async Task AcceptAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(stop);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                return;
            }
            lock (_gate) _connections.Add(ServeAsync(socket, stop));
        }
    }

    /// <summary>Reads a connection to its end, answering every request as soon as it is complete.</summary>
    private async Task ServeAsync(Socket socket, CancellationToken stop)
    {
        using var _ = socket;
        var received = new List<byte>();
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer, SocketFlags.None, stop);
                if (read == 0) return;
                Interlocked.Add(ref _bytes, read);
                received.AddRange(buffer.AsSpan(0, read));
                // Every complete request at the front of what is buffered, in order, as a pipelining client expects.
                while (TryParse(received, out var request, out var consumed))
                {
                    if (request is null) return; // not HTTP as this backend reads it: it closes, as an origin would
                    received.RemoveRange(0, consumed);
                    lock (_gate) _requests.Add(request);
                    await socket.SendAsync(Response, SocketFlags.None, stop);
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The proxy dropped the connection (a request it gave up on) or the backend is stopping.
        }
    }

    /// <summary>
    /// One request from the front of <paramref name="data"/>: false while it is incomplete; true with a null request when
    /// the bytes cannot be a request (then the connection closes).
    /// </summary>
    internal static bool TryParse(List<byte> data, out Request? request, out int consumed)
    {
        request = null;
        consumed = 0;
        var bytes = data.ToArray();
        var headEnd = IndexOf(bytes, "\r\n\r\n"u8, 0);
        if (headEnd < 0) return false;
        var lines = Encoding.Latin1.GetString(bytes, 0, headEnd).Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3) return true;
        var headers = new List<(string, string)>();
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            if (colon <= 0) return true;
            headers.Add((line[..colon], line[(colon + 1)..].Trim(' ', '\t')));
        }
        var position = headEnd + 4;
        var chunked = headers.Any(h => h.Item1.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && h.Item2.Contains("chunked", StringComparison.OrdinalIgnoreCase));
        var contentLength = headers.Where(h => h.Item1.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)).Select(h => h.Item2).FirstOrDefault();
        byte[] body;
        if (chunked)
        {
            var decoded = new List<byte>();
            while (true)
            {
                var lineEnd = IndexOf(bytes, "\r\n"u8, position);
                if (lineEnd < 0) return false;
                var sizeText = Encoding.Latin1.GetString(bytes, position, lineEnd - position).Split(';')[0].Trim();
                if (!long.TryParse(sizeText, System.Globalization.NumberStyles.AllowHexSpecifier, null, out var size) || size < 0) return true;
                position = lineEnd + 2;
                if (size == 0)
                {
                    // Trailers up to the empty line.
                    while (true)
                    {
                        var trailerEnd = IndexOf(bytes, "\r\n"u8, position);
                        if (trailerEnd < 0) return false;
                        var empty = trailerEnd == position;
                        position = trailerEnd + 2;
                        if (empty) break;
                    }
                    break;
                }
                if (bytes.Length < position + size + 2) return false;
                decoded.AddRange(bytes.AsSpan(position, (int)size));
                position += (int)size + 2;
            }
            body = decoded.ToArray();
        }
        else if (contentLength is not null)
        {
            if (!int.TryParse(contentLength, out var length) || length < 0) return true;
            if (bytes.Length < position + length) return false;
            body = bytes.AsSpan(position, length).ToArray();
            position += length;
        }
        else
        {
            body = [];
        }
        request = new Request(requestLine[0], requestLine[1], requestLine[2], headers, body);
        consumed = position;
        return true;
    }

    private static int IndexOf(byte[] bytes, ReadOnlySpan<byte> value, int from)
    {
        var at = bytes.AsSpan(from).IndexOf(value);
        return at < 0 ? -1 : from + at;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        await _accepting;
        Task[] connections;
        lock (_gate) connections = [.. _connections];
        await Task.WhenAll(connections);
        _stop.Dispose();
    }
}
