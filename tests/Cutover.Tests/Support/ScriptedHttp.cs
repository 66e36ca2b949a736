using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Cutover.Tests.Support;

/// <summary>One request as a <see cref="ScriptedHttpBackend"/> received it: the connection it came on and its exact bytes.</summary>
public sealed record RawRequest(int Connection, string Head, byte[] Body)
{
    public string RequestLine => Head[..Head.IndexOf("\r\n", StringComparison.Ordinal)];

    /// <summary>Every value of a header, in order (names case-insensitive).</summary>
    public IReadOnlyList<string> Values(string name) =>
        Head.Split("\r\n").Skip(1).Where(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))
            .Select(l => l[(name.Length + 1)..].Trim()).ToList();
}

/// <summary>
/// An HTTP/1.1 instance on a raw TCP socket that records exactly what it receives (head as text, Content-Length
/// body) and answers with the bytes a test scripts per request, so a test sees what the proxy sent and can send what
/// no real server would (garbage, a chunked body split anywhere, a close right after a response).
/// </summary>
public sealed class ScriptedHttpBackend : IAsyncDisposable
{
    /// <summary>What to do with one request: the response bytes (null: answer nothing), then whether to close.</summary>
    public delegate Task<(byte[]? Response, bool Close)> Responder(RawRequest request, CancellationToken cancellationToken);

    private readonly Socket _listening;
    private readonly Responder _respond;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Task _accepting;
    private int _connectionCount;
    private int _closedCount;
    private readonly ConcurrentDictionary<int, bool> _closed = new();

    public ScriptedHttpBackend(Responder respond)
    {
        _respond = respond;
        _listening = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listening.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listening.Listen(64);
        Endpoint = (IPEndPoint)_listening.LocalEndPoint!;
        _accepting = AcceptAsync();
    }

    public IPEndPoint Endpoint { get; }
    public ConcurrentQueue<RawRequest> Requests { get; } = new();
    public int Connections => Volatile.Read(ref _connectionCount);
    /// <summary>Connections that have ended: the proxy closed them (seen even while a responder is still working) or a responder closed them.</summary>
    public int ClosedConnections => Volatile.Read(ref _closedCount);
    /// <summary>Whether the connection with this number (<see cref="RawRequest.Connection"/>) has ended.</summary>
    public bool HasClosed(int connection) => _closed.ContainsKey(connection);

    public static byte[] Ok(string body, string extraHeaders = "") =>
        Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nContent-Length: {Encoding.ASCII.GetByteCount(body)}\r\n{extraHeaders}\r\n{body}");

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var socket = await _listening.AcceptAsync(_stop.Token);
                var id = Interlocked.Increment(ref _connectionCount);
                lock (_connections) _connections.Add(ServeAsync(socket, id));
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
    }

    private async Task ServeAsync(Socket socket, int id)
    {
        using var _ = socket;
        var buffer = new List<byte>();
        var chunk = new byte[64 * 1024];
        try
        {
            while (true)
            {
                int headEnd;
                while ((headEnd = IndexOf(buffer, "\r\n\r\n"u8)) < 0)
                {
                    var n = await socket.ReceiveAsync(chunk, SocketFlags.None, _stop.Token);
                    if (n == 0) return;
                    buffer.AddRange(chunk.AsSpan(0, n));
                }
                var head = Encoding.Latin1.GetString(buffer.GetRange(0, headEnd + 4).ToArray());
                if (head.Split("\r\n").Any(l => l.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase) && l[18..].Trim().Equals("chunked", StringComparison.OrdinalIgnoreCase)))
                {
                    // A chunked body, decoded as a lenient origin does (RawHttpBackend's reading); unparsable: close.
                    RawHttpBackend.Request? parsed;
                    int consumed;
                    while (!RawHttpBackend.TryParse(buffer, out parsed, out consumed))
                    {
                        var n = await socket.ReceiveAsync(chunk, SocketFlags.None, _stop.Token);
                        if (n == 0) return;
                        buffer.AddRange(chunk.AsSpan(0, n));
                    }
                    if (parsed is null) return;
                    buffer.RemoveRange(0, consumed);
                    var chunkedRequest = new RawRequest(id, head, parsed.Body);
                    Requests.Enqueue(chunkedRequest);
                    if (await RespondAsync(socket, chunkedRequest)) return;
                    continue;
                }
                var length = 0;
                foreach (var line in head.Split("\r\n"))
                    if (line.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase)) length = int.Parse(line[15..].Trim());
                while (buffer.Count < headEnd + 4 + length)
                {
                    var n = await socket.ReceiveAsync(chunk, SocketFlags.None, _stop.Token);
                    if (n == 0) return;
                    buffer.AddRange(chunk.AsSpan(0, n));
                }
                var request = new RawRequest(id, head, buffer.GetRange(headEnd + 4, length).ToArray());
                buffer.RemoveRange(0, headEnd + 4 + length);
                Requests.Enqueue(request);
                if (await RespondAsync(socket, request)) return;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            _closed[id] = true;
            Interlocked.Increment(ref _closedCount);
        }
    }

    /// <summary>
    /// Runs the responder with a token that also fires when the proxy closes the connection meanwhile, as a real app
    /// sees its request aborted (a peek at the socket, so bytes of a pipelined request stay unread for the next one),
    /// and sends its answer; true when the connection is to close.
    /// </summary>
    private async Task<bool> RespondAsync(Socket socket, RawRequest request)
    {
        using var responding = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        using var stopWatching = new CancellationTokenSource();
        var watching = WatchForCloseAsync(socket, responding, stopWatching.Token);
        try
        {
            var (response, close) = await _respond(request, responding.Token);
            // The answer first: ending the watch is a hop through the thread pool that the proxy need not wait for.
            if (response is not null) await socket.SendAsync(response, SocketFlags.None, _stop.Token);
            return close;
        }
        finally
        {
            stopWatching.Cancel();
            await watching;
        }
    }

    private static async Task WatchForCloseAsync(Socket socket, CancellationTokenSource responding, CancellationToken stopWatching)
    {
        try
        {
            if (await socket.ReceiveAsync(new byte[1], SocketFlags.Peek, stopWatching) == 0) responding.Cancel();
        }
        catch (SocketException)
        {
            responding.Cancel();
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private static int IndexOf(List<byte> buffer, ReadOnlySpan<byte> value)
    {
        for (var i = 0; i + value.Length <= buffer.Count; i++)
        {
            var match = true;
            for (var j = 0; j < value.Length && match; j++) match = buffer[i + j] == value[j];
            if (match) return i;
        }
        return -1;
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listening.Dispose();
        await _accepting;
        Task[] connections;
        lock (_connections) connections = [.. _connections];
        await Task.WhenAll(connections);
        _stop.Dispose();
    }
}

/// <summary>A response as <see cref="RawHttpClient"/> read it: status, head, body (de-chunked) and the exact bytes.</summary>
public sealed record RawResponse(int Status, string Head, string Body, string Raw)
{
    public IReadOnlyList<string> Values(string name) =>
        Head.Split("\r\n").Skip(1).Where(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase))
            .Select(l => l[(name.Length + 1)..].Trim()).ToList();
}

/// <summary>A client on one TCP connection that writes exact bytes and reads whole responses (Content-Length, chunked or to close).</summary>
public sealed class RawHttpClient : IDisposable
{
    private readonly Socket _socket;
    private readonly List<byte> _buffer = [];
    private readonly byte[] _chunk = new byte[64 * 1024];

    private RawHttpClient(Socket socket) => _socket = socket;

    public static async Task<RawHttpClient> ConnectAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint, cancellationToken);
        return new RawHttpClient(socket);
    }

    public async Task SendAsync(string text, CancellationToken cancellationToken) => await SendAsync(Encoding.Latin1.GetBytes(text), cancellationToken);

    public async Task SendAsync(byte[] bytes, CancellationToken cancellationToken) => await _socket.SendAsync(bytes, SocketFlags.None, cancellationToken);

    /// <summary>Null when the connection closed before a response began.</summary>
    public async Task<RawResponse?> ReadAsync(CancellationToken cancellationToken, bool forHead = false)
    {
        int headEnd;
        while ((headEnd = Find("\r\n\r\n")) < 0)
            if (!await FillAsync(cancellationToken)) return null;
        var head = Encoding.Latin1.GetString(_buffer.GetRange(0, headEnd + 4).ToArray());
        var status = int.Parse(head.AsSpan(9, 3));
        var lines = head.Split("\r\n");
        string? Header(string name) => lines.Skip(1).Where(l => l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase)).Select(l => l[(name.Length + 1)..].Trim()).FirstOrDefault();
        var position = headEnd + 4;
        var body = new List<byte>();
        if (forHead || status is 204 or 304 || status < 200)
        {
        }
        else if (Header("Transfer-Encoding") is { } te && te.EndsWith("chunked", StringComparison.OrdinalIgnoreCase))
        {
            while (true)
            {
                int lineEnd;
                while ((lineEnd = Find("\r\n", position)) < 0) await FillOrThrowAsync(cancellationToken);
                var size = Convert.ToInt32(Encoding.ASCII.GetString(_buffer.GetRange(position, lineEnd - position).ToArray()).Split(';')[0], 16);
                position = lineEnd + 2;
                if (size == 0)
                {
                    int end;
                    while ((end = Find("\r\n", position)) < 0) await FillOrThrowAsync(cancellationToken);
                    // trailers: until the empty line
                    while (end != position)
                    {
                        position = end + 2;
                        while ((end = Find("\r\n", position)) < 0) await FillOrThrowAsync(cancellationToken);
                    }
                    position = end + 2;
                    break;
                }
                while (_buffer.Count < position + size + 2) await FillOrThrowAsync(cancellationToken);
                body.AddRange(_buffer.GetRange(position, size));
                position += size + 2;
            }
        }
        else if (Header("Content-Length") is { } length)
        {
            var n = int.Parse(length);
            while (_buffer.Count < position + n) await FillOrThrowAsync(cancellationToken);
            body.AddRange(_buffer.GetRange(position, n));
            position += n;
        }
        else
        {
            while (await FillAsync(cancellationToken)) { }
            body.AddRange(_buffer.GetRange(position, _buffer.Count - position));
            position = _buffer.Count;
        }
        var raw = Encoding.Latin1.GetString(_buffer.GetRange(0, position).ToArray());
        _buffer.RemoveRange(0, position);
        return new RawResponse(status, head, Encoding.Latin1.GetString(body.ToArray()), raw);
    }

    /// <summary>True when the proxy closed the connection (EOF) with nothing more to read.</summary>
    public async Task<bool> ClosedAsync(CancellationToken cancellationToken)
    {
        try
        {
            return _buffer.Count == 0 && !await FillAsync(cancellationToken);
        }
        catch (SocketException)
        {
            return true;
        }
    }

    private int Find(string text, int from = 0)
    {
        var value = Encoding.ASCII.GetBytes(text);
        for (var i = from; i + value.Length <= _buffer.Count; i++)
        {
            var match = true;
            for (var j = 0; j < value.Length && match; j++) match = _buffer[i + j] == value[j];
            if (match) return i;
        }
        return -1;
    }

    private async Task<bool> FillAsync(CancellationToken cancellationToken)
    {
        var n = await _socket.ReceiveAsync(_chunk, SocketFlags.None, cancellationToken);
        if (n == 0) return false;
        _buffer.AddRange(_chunk.AsSpan(0, n));
        return true;
    }

    private async Task FillOrThrowAsync(CancellationToken cancellationToken)
    {
        if (!await FillAsync(cancellationToken)) throw new IOException("the connection closed mid-response");
    }

    public void Dispose() => _socket.Dispose();
}
