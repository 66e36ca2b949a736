using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Cutover.Agent;

/// <summary>
/// HTTP/1.1 to the agent over its Unix socket, one request per connection: all that <see cref="AgentClient"/> needs.
/// Not HttpClient, because a CLI run is a few hundred milliseconds and SocketsHttpHandler's generic machinery is
/// JIT-compiled in each one (issue 14: about 150 methods and 40 ms of CPU in a 200 ms `cutover status` of an agent app).
/// The agent is Kestrel, so the answer is framed by Content-Length or chunked; anything else in its head (no status
/// line, both framings, a Content-Length that is not a number, a header without a colon) is refused rather than guessed
/// at, and a connection closed before the framing says the answer ends is an error, never a short answer.
/// Errors keep HttpClient's types, which the callers already handle: a connection that could not be made or an answer
/// that is not HTTP is an <see cref="HttpRequestException"/> (with <see cref="HttpRequestError.ConnectionError"/> and
/// the <see cref="SocketException"/> inside when nothing was sent), a body cut short is an <see cref="HttpIOException"/>
/// while it streams and an <see cref="HttpRequestException"/> from <see cref="AgentHttpResponse.ReadAsStringAsync"/>.
/// </summary>
public static class AgentSocketHttp
{
    /// <summary>The most an answer's head (status line and headers) may take; the agent's are a few hundred bytes.</summary>
    private const int MaxHeadBytes = 64 * 1024;

    internal static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();
    internal static readonly byte[] LineEnd = "\r\n"u8.ToArray();

    /// <summary>Sends one request and returns once the answer's head has arrived; the body is read from <see cref="AgentHttpResponse.Body"/>.</summary>
    /// <param name="path">The request target, from the root ("/v1/apps"): printable ASCII only.</param>
    /// <param name="jsonBody">The request's JSON body; null sends none (Content-Length: 0 on a POST, as HttpClient does).</param>
    public static async Task<AgentHttpResponse> SendAsync(string socketPath, string method, string path, byte[]? jsonBody, CancellationToken cancellationToken)
    {
        if (path is not ['/', ..] || path.AsSpan().ContainsAnyExceptInRange('!', '~'))
            throw new ArgumentException($"not a request target: {path}", nameof(path));
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        var handedOver = false;
        try
        {
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken);
            }
            catch (SocketException e)
            {
                throw new HttpRequestException(HttpRequestError.ConnectionError, $"{e.Message} ({socketPath})", e);
            }
            var head = new StringBuilder()
                .Append(method).Append(' ').Append(path).Append(" HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n");
            if (jsonBody is not null) head.Append("Content-Type: application/json; charset=utf-8\r\n");
            if (jsonBody is not null || method != "GET") head.Append("Content-Length: ").Append(jsonBody?.Length ?? 0).Append("\r\n");
            head.Append("\r\n");
            var request = Encoding.ASCII.GetBytes(head.ToString());
            if (jsonBody is not null) request = [.. request, .. jsonBody];
            try
            {
                await socket.SendAsync(request, SocketFlags.None, cancellationToken);
            }
            catch (SocketException e)
            {
                // Not ConnectionError: something listened, so this is not "no agent" (which would start one).
                throw new HttpRequestException(HttpRequestError.Unknown, $"the agent closed the connection before it took the request: {e.Message} ({socketPath})", new IOException(e.Message, e));
            }
            var wire = new Wire(socket);
            try
            {
                var response = await ReadHeadAsync(wire, method, cancellationToken);
                handedOver = true;
                return response;
            }
            catch (HttpIOException e)
            {
                // A reset before the answer's head: HttpClient's callers know a failed request as HttpRequestException.
                throw new HttpRequestException(e.HttpRequestError, e.Message, e);
            }
        }
        finally
        {
            // Until the response owns it: any failure before closes the connection.
            if (!handedOver) socket.Dispose();
        }
    }

    private static async Task<AgentHttpResponse> ReadHeadAsync(Wire wire, string method, CancellationToken cancellationToken)
    {
        var headLength = await wire.FillUntilAsync(HeadEnd, MaxHeadBytes, cancellationToken);
        if (headLength < 0)
            throw new HttpRequestException(HttpRequestError.InvalidResponse,
                wire.Available == 0 ? "the agent closed the connection without answering" : "the agent's answer has no complete head (status line and headers)");
        var lines = Encoding.Latin1.GetString(wire.Take(headLength + 4)[..headLength]).Split("\r\n");
        var statusLine = lines[0];
        // "HTTP/1.1 200 OK": the reason phrase may be empty, the code is exactly three digits.
        if (!statusLine.StartsWith("HTTP/1.", StringComparison.Ordinal) || statusLine.Length < 12 || statusLine[8] != ' '
            || !int.TryParse(statusLine.AsSpan(9, 3), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var status)
            || status < 100 || (statusLine.Length > 12 && statusLine[12] != ' '))
            throw new HttpRequestException(HttpRequestError.InvalidResponse, $"the agent's answer does not start with an HTTP/1.x status line: {Json.Quote(statusLine)}");
        long? contentLength = null;
        var chunked = false;
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':');
            // No whitespace before the colon (RFC 9112, 5.1), no obs-fold: a header either reads one way or is refused.
            if (colon <= 0 || line[colon - 1] is ' ' or '\t' || line[0] is ' ' or '\t')
                throw new HttpRequestException(HttpRequestError.InvalidResponse, $"the agent's answer has a malformed header line: {Json.Quote(line)}");
            var name = line[..colon];
            var value = line[(colon + 1)..].Trim(' ', '\t');
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (!long.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var length)
                    || (contentLength is { } earlier && earlier != length))
                    throw new HttpRequestException(HttpRequestError.InvalidResponse, $"the agent's answer has a bad Content-Length: {Json.Quote(value)}");
                contentLength = length;
            }
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                if (!value.Equals("chunked", StringComparison.OrdinalIgnoreCase) || chunked)
                    throw new HttpRequestException(HttpRequestError.InvalidResponse, $"the agent's answer has a Transfer-Encoding other than one chunked: {Json.Quote(value)}");
                chunked = true;
            }
        }
        if (chunked && contentLength is not null)
            throw new HttpRequestException(HttpRequestError.InvalidResponse, "the agent's answer has both Content-Length and Transfer-Encoding");
        // Without either, the body runs to the end of the connection (we asked for Connection: close); none at all
        // for a HEAD request and the statuses that never have one.
        var body = method == "HEAD" || status is 204 or 304 || status < 200 ? new AgentBodyStream(wire, 0)
            : chunked ? new AgentBodyStream(wire)
            : new AgentBodyStream(wire, contentLength);
        return new AgentHttpResponse(status, body);
    }

    /// <summary>The socket and what has been read from it but not yet consumed.</summary>
    internal sealed class Wire(Socket socket) : IDisposable
    {
        private byte[] _buffer = new byte[16 * 1024];
        private int _start;
        private int _end;

        public int Available => _end - _start;

        public ReadOnlySpan<byte> Buffered => _buffer.AsSpan(_start, _end - _start);

        /// <summary>Reads until <paramref name="marker"/> is buffered; its offset, or -1 at the end of the connection or past <paramref name="limit"/>.</summary>
        public async ValueTask<int> FillUntilAsync(byte[] marker, int limit, CancellationToken cancellationToken)
        {
            while (true)
            {
                var at = Buffered.IndexOf(marker);
                if (at >= 0) return at;
                if (Available >= limit || !await FillAsync(cancellationToken)) return -1;
            }
        }

        /// <summary>Reads more from the socket into the buffer; false at the end of the connection.</summary>
        public async ValueTask<bool> FillAsync(CancellationToken cancellationToken)
        {
            if (_start > 0 && _start == _end) _start = _end = 0;
            if (_end == _buffer.Length)
            {
                if (_start > 0)
                {
                    Buffer.BlockCopy(_buffer, _start, _buffer, 0, Available);
                    (_end, _start) = (Available, 0);
                }
                else Array.Resize(ref _buffer, _buffer.Length * 2);
            }
            int read;
            try
            {
                read = await socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, cancellationToken);
            }
            catch (SocketException e)
            {
                throw new HttpIOException(HttpRequestError.ResponseEnded, $"the agent's connection failed mid-answer: {e.Message}", e);
            }
            _end += read;
            return read > 0;
        }

        /// <summary>Consumes <paramref name="count"/> buffered bytes.</summary>
        public ReadOnlySpan<byte> Take(int count)
        {
            var taken = _buffer.AsSpan(_start, count);
            _start += count;
            return taken;
        }

        public void Dispose() => socket.Dispose();
    }
}

/// <summary>The agent's answer: its status and its body, read as it arrives. Disposing closes the connection.</summary>
public sealed class AgentHttpResponse(int status, Stream body) : IDisposable
{
    public int Status { get; } = status;

    public bool IsSuccessStatusCode => Status is >= 200 and <= 299;

    public HttpStatusCode StatusCode => (HttpStatusCode)Status;

    public Stream Body { get; } = body;

    /// <summary>The whole body as UTF-8 text; a body cut short is an <see cref="HttpRequestException"/>, as with HttpClient's buffered reads.</summary>
    public async Task<string> ReadAsStringAsync(CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        try
        {
            await Body.CopyToAsync(buffer, cancellationToken);
        }
        catch (IOException e)
        {
            throw new HttpRequestException(HttpRequestError.ResponseEnded, e.Message, e);
        }
        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    public void Dispose() => Body.Dispose();
}

/// <summary>A response body: a Content-Length's bytes, the chunks of a chunked one, or up to the end of the connection.</summary>
internal sealed class AgentBodyStream : Stream
{
    private const int MaxChunkLineBytes = 4096;
    private readonly AgentSocketHttp.Wire _wire;
    private readonly bool _chunked;
    private readonly bool _untilClose;
    private long _left;
    private bool _done;

    /// <summary>Chunked.</summary>
    public AgentBodyStream(AgentSocketHttp.Wire wire)
    {
        _wire = wire;
        _chunked = true;
    }

    /// <summary>By length, or up to the end of the connection when <paramref name="length"/> is null.</summary>
    public AgentBodyStream(AgentSocketHttp.Wire wire, long? length)
    {
        _wire = wire;
        _untilClose = length is null;
        _left = length ?? 0;
        _done = length == 0;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (_done || destination.Length == 0) return 0;
        if (_chunked && _left == 0 && !await NextChunkAsync(cancellationToken)) return 0;
        if (_wire.Available == 0 && !await _wire.FillAsync(cancellationToken))
        {
            if (_untilClose)
            {
                _done = true;
                return 0;
            }
            throw new HttpIOException(HttpRequestError.ResponseEnded, "the agent closed the connection before its answer was complete");
        }
        var count = _untilClose ? Math.Min(destination.Length, _wire.Available) : (int)Math.Min(Math.Min(destination.Length, _wire.Available), _left);
        _wire.Take(count).CopyTo(destination.Span);
        if (!_untilClose)
        {
            _left -= count;
            if (_left == 0 && !_chunked) _done = true;
            if (_left == 0 && _chunked) await ExpectAsync(AgentSocketHttp.LineEnd, cancellationToken);
        }
        return count;
    }

    /// <summary>Reads the next chunk's size line; false after the last chunk (size 0) and its trailers.</summary>
    private async ValueTask<bool> NextChunkAsync(CancellationToken cancellationToken)
    {
        var line = await LineAsync(cancellationToken);
        // "1a" or "1a;name=value": hex digits only, and not so many that the size overflows.
        var sizeText = line.Split(';', 2)[0];
        if (sizeText.Length is 0 or > 15 || !long.TryParse(sizeText, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var size))
            throw new HttpIOException(HttpRequestError.InvalidResponse, $"the agent's answer has a bad chunk size: {Json.Quote(line)}");
        if (size > 0)
        {
            _left = size;
            return true;
        }
        while ((await LineAsync(cancellationToken)).Length > 0) { }
        _done = true;
        return false;
    }

    private async ValueTask<string> LineAsync(CancellationToken cancellationToken)
    {
        var end = await _wire.FillUntilAsync(AgentSocketHttp.LineEnd, MaxChunkLineBytes, cancellationToken);
        if (end < 0) throw Truncated();
        var line = Encoding.Latin1.GetString(_wire.Take(end + 2)[..end]);
        if (line.Contains('\r') || line.Contains('\n'))
            throw new HttpIOException(HttpRequestError.InvalidResponse, $"the agent's answer has a bare CR or LF in its chunk framing: {Json.Quote(line)}");
        return line;
    }

    private async ValueTask ExpectAsync(byte[] expected, CancellationToken cancellationToken)
    {
        while (_wire.Available < expected.Length)
            if (!await _wire.FillAsync(cancellationToken)) throw Truncated();
        if (!_wire.Buffered[..expected.Length].SequenceEqual(expected))
            throw new HttpIOException(HttpRequestError.InvalidResponse, "the agent's answer has a chunk longer than its size");
        _wire.Take(expected.Length);
    }

    private static HttpIOException Truncated() =>
        new(HttpRequestError.ResponseEnded, "the agent closed the connection before its answer was complete");

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _wire.Dispose();
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
