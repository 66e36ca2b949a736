using System.Text;

namespace Cutover.Proxy.Http1;

/// <summary>What the request head parser made of the bytes so far.</summary>
public enum RequestParse
{
    /// <summary>The head is not complete yet: read more.</summary>
    Incomplete,
    /// <summary>A complete head the fast path may serve (the hand-over decision still has its say).</summary>
    Complete,
    /// <summary>Legal HTTP the fast path does not do (HTTP/1.0, Transfer-Encoding, Upgrade, ...): Kestrel's turn.</summary>
    HandOver,
    /// <summary>Malformed: answered 400 with Connection: close, never forwarded.</summary>
    Malformed,
}

/// <summary>One header field of a parsed head: offsets into the head's bytes.</summary>
internal readonly record struct HeaderField(int NameStart, int NameLength, int ValueStart, int ValueLength, FieldKind Kind);

/// <summary>The fields the fast path treats specially; Other are copied through.</summary>
internal enum FieldKind : byte
{
    Other,
    Host,
    ContentLength,
    TransferEncoding,
    Connection,
    /// <summary>Keep-Alive, Proxy-Connection, TE, Trailer: hop-by-hop, never forwarded.</summary>
    HopByHop,
    Upgrade,
    Expect,
    XForwardedFor,
    XForwardedProto,
    XForwardedHost,
    /// <summary>Forwarded and X-Forwarded-Prefix: passed on from trusted peers only.</summary>
    TrustedOnly,
    /// <summary>A response's HSTS, replaced by the proxy's own when hsts is on.</summary>
    StrictTransportSecurity,
}

/// <summary>
/// A request head as the fast path parsed it (RFC 9112), reused from request to request of one connection. The
/// offsets point into the span the parser was given, which stays valid until the caller advances its pipe.
/// </summary>
internal sealed class RequestHead
{
    /// <summary>Kestrel's default MaxRequestHeaderCount: past it Kestrel answers 431, so such a head is handed over.</summary>
    public const int MaxFields = 100;
    /// <summary>Kestrel's default MaxRequestLineSize: past it Kestrel answers 414.</summary>
    public const int MaxRequestLine = 8 * 1024;

    public readonly HeaderField[] Fields = new HeaderField[MaxFields];
    public int FieldCount;
    /// <summary>Bytes of the head, its final empty line included.</summary>
    public int Length;
    public int MethodLength;
    public int TargetStart;
    public int TargetLength;
    /// <summary>-1 without Content-Length.</summary>
    public long ContentLength;
    /// <summary>One Transfer-Encoding field saying exactly "chunked", and no Content-Length: the body runs to its last chunk.</summary>
    public bool Chunked;
    public bool ConnectionClose;
    public int HostField;
    /// <summary>The header lines as Kestrel counts them against a limit: name, ": ", value, CRLF.</summary>
    public long HeaderBytes;
    /// <summary>Why the head was refused or handed over, for tests and diagnostics.</summary>
    public string? Reason;

    public bool HasBody => ContentLength > 0 || Chunked;

    public ReadOnlySpan<byte> Method(ReadOnlySpan<byte> head) => head[..MethodLength];
    public ReadOnlySpan<byte> Target(ReadOnlySpan<byte> head) => head.Slice(TargetStart, TargetLength);
    public ReadOnlySpan<byte> Name(ReadOnlySpan<byte> head, in HeaderField field) => head.Slice(field.NameStart, field.NameLength);
    public ReadOnlySpan<byte> Value(ReadOnlySpan<byte> head, in HeaderField field) => head.Slice(field.ValueStart, field.ValueLength);

    private void Reset()
    {
        FieldCount = Length = MethodLength = TargetStart = TargetLength = 0;
        ContentLength = -1;
        Chunked = false;
        ConnectionClose = false;
        HostField = -1;
        HeaderBytes = 0;
        Reason = null;
    }

    /// <summary>
    /// Parses the head at the start of <paramref name="buffer"/>. Strict where HTTP/1.1 proxies get attacked: CRLF
    /// line ends only (no bare CR or LF), no obs-fold, no whitespace before a colon, token names, no control characters
    /// in values, exactly one Host, one valid Content-Length. What is legal but not the common request (HTTP/1.0,
    /// absolute or asterisk targets, Transfer-Encoding, Upgrade, CONNECT, Expect, percent-encoded or dot-segment
    /// paths that Kestrel would normalise, unusual Host values) is handed over to Kestrel, which decides.
    /// </summary>
    /// <param name="maxHead">The listener's ceiling: a head not complete within it is handed over (Kestrel answers 431).</param>
    public RequestParse Parse(ReadOnlySpan<byte> buffer, int maxHead)
    {
        Reset();
        var line = HttpSyntax.NextLine(buffer, 0, out var lineLength);
        if (line == LineResult.Incomplete)
            return buffer.Length > MaxRequestLine ? HandOver("request line longer than Kestrel takes") : RequestParse.Incomplete;
        if (line == LineResult.Malformed) return Malformed("request line not ended by CRLF");
        if (lineLength == 0) return HandOver("empty line before the request line");
        if (lineLength > MaxRequestLine) return HandOver("request line longer than Kestrel takes");
        var verdict = ParseRequestLine(buffer[..lineLength]);
        if (verdict != RequestParse.Complete) return verdict;

        var position = lineLength + 2;
        var contentLengths = 0;
        while (true)
        {
            if (position > maxHead) return HandOver("head larger than the listener's ceiling");
            line = HttpSyntax.NextLine(buffer, position, out lineLength);
            if (line == LineResult.Incomplete)
                return buffer.Length > maxHead ? HandOver("head larger than the listener's ceiling") : RequestParse.Incomplete;
            if (line == LineResult.Malformed) return Malformed("header line not ended by CRLF (bare CR or LF)");
            if (lineLength == 0)
            {
                Length = position + 2;
                break;
            }
            var text = buffer.Slice(position, lineLength);
            if (text[0] is (byte)' ' or (byte)'\t') return Malformed("obs-fold (a header line continued on the next)");
            if (!HttpSyntax.TryParseField(text, out var nameLength, out var valueStart, out var valueLength))
                return Malformed("malformed header field");
            if (FieldCount == MaxFields) return HandOver("more header fields than Kestrel takes");
            var name = text[..nameLength];
            var value = text.Slice(valueStart, valueLength);
            var kind = Classify(name);
            switch (kind)
            {
                case FieldKind.Host:
                    if (HostField >= 0) return Malformed("more than one Host header");
                    HostField = FieldCount;
                    break;
                case FieldKind.ContentLength:
                    if (++contentLengths > 1) return Malformed("more than one Content-Length");
                    if (!HttpSyntax.TryParseContentLength(value, out var length)) return Malformed("invalid Content-Length");
                    ContentLength = length;
                    break;
                case FieldKind.TransferEncoding:
                    // One field of exactly "chunked" is relayed here (its body checked chunk by chunk as it streams); any
                    // other coding, a list or a second field is Kestrel's to refuse or decode.
                    if (Chunked || !Ascii.EqualsIgnoreCase(value, "chunked"u8)) return HandOver("Transfer-Encoding other than one chunked");
                    Chunked = true;
                    break;
                case FieldKind.Upgrade:
                    return HandOver("Upgrade");
                case FieldKind.Expect:
                    return HandOver("Expect");
                case FieldKind.Connection:
                    if (HttpSyntax.ListContains(value, "close"u8)) ConnectionClose = true;
                    break;
            }
            Fields[FieldCount++] = new HeaderField(position, nameLength, position + valueStart, valueLength, kind);
            HeaderBytes += nameLength + valueLength + 4;
            position += lineLength + 2;
        }

        // Both framings (RFC 9112 §6.1: a smuggling attempt or a broken client): Kestrel's answer, as before.
        if (Chunked && contentLengths > 0) return HandOver("Transfer-Encoding with Content-Length");
        if (HostField < 0) return Malformed("no Host header");
        var host = Value(buffer, Fields[HostField]);
        if (!IsPlainHost(host)) return HandOver("a Host value Kestrel decides on");
        return RequestParse.Complete;
    }

    private RequestParse ParseRequestLine(ReadOnlySpan<byte> line)
    {
        var space = line.IndexOf((byte)' ');
        if (space <= 0 || !HttpSyntax.IsToken(line[..space])) return Malformed("malformed method");
        MethodLength = space;
        if (line[..space].SequenceEqual("CONNECT"u8)) return HandOver("CONNECT");
        var rest = line[(space + 1)..];
        var second = rest.IndexOf((byte)' ');
        if (second <= 0) return Malformed("malformed request line");
        var target = rest[..second];
        var version = rest[(second + 1)..];
        if (target[0] != '/') return HandOver("a target not in origin-form");
        foreach (var c in target)
        {
            if (c is <= 0x20 or 0x7F) return Malformed("control character or space in the target");
            // Kestrel percent-decodes and removes dot segments before routing; it does so for these.
            if (c is (byte)'%' or >= 0x80) return HandOver("a target Kestrel normalises");
        }
        var query = target.IndexOf((byte)'?');
        var path = query >= 0 ? target[..query] : target;
        if (path.IndexOf("/."u8) >= 0) return HandOver("a path with dot segments");
        if (!version.SequenceEqual("HTTP/1.1"u8)) return HandOver("not HTTP/1.1");
        TargetStart = space + 1;
        TargetLength = target.Length;
        return RequestParse.Complete;
    }

    /// <summary>A host name or IPv4 address with an optional port; IPv6 literals and anything stranger go to Kestrel.</summary>
    private static bool IsPlainHost(ReadOnlySpan<byte> host)
    {
        if (host.Length == 0) return false;
        var colon = host.IndexOf((byte)':');
        var name = colon >= 0 ? host[..colon] : host;
        if (name.Length == 0) return false;
        foreach (var c in name)
            if (!(char.IsAsciiLetterOrDigit((char)c) || c is (byte)'.' or (byte)'-' or (byte)'_')) return false;
        if (colon < 0) return true;
        var port = host[(colon + 1)..];
        if (port.Length is 0 or > 5) return false;
        foreach (var c in port)
            if (c is < (byte)'0' or > (byte)'9') return false;
        return true;
    }

    private static FieldKind Classify(ReadOnlySpan<byte> name) => name.Length switch
    {
        2 when Ascii.EqualsIgnoreCase(name, "TE"u8) => FieldKind.HopByHop,
        4 when Ascii.EqualsIgnoreCase(name, "Host"u8) => FieldKind.Host,
        6 when Ascii.EqualsIgnoreCase(name, "Expect"u8) => FieldKind.Expect,
        7 when Ascii.EqualsIgnoreCase(name, "Upgrade"u8) => FieldKind.Upgrade,
        7 when Ascii.EqualsIgnoreCase(name, "Trailer"u8) => FieldKind.HopByHop,
        9 when Ascii.EqualsIgnoreCase(name, "Forwarded"u8) => FieldKind.TrustedOnly,
        10 when Ascii.EqualsIgnoreCase(name, "Connection"u8) => FieldKind.Connection,
        10 when Ascii.EqualsIgnoreCase(name, "Keep-Alive"u8) => FieldKind.HopByHop,
        14 when Ascii.EqualsIgnoreCase(name, "Content-Length"u8) => FieldKind.ContentLength,
        15 when Ascii.EqualsIgnoreCase(name, "X-Forwarded-For"u8) => FieldKind.XForwardedFor,
        16 when Ascii.EqualsIgnoreCase(name, "X-Forwarded-Host"u8) => FieldKind.XForwardedHost,
        16 when Ascii.EqualsIgnoreCase(name, "Proxy-Connection"u8) => FieldKind.HopByHop,
        17 when Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8) => FieldKind.TransferEncoding,
        17 when Ascii.EqualsIgnoreCase(name, "X-Forwarded-Proto"u8) => FieldKind.XForwardedProto,
        18 when Ascii.EqualsIgnoreCase(name, "X-Forwarded-Prefix"u8) => FieldKind.TrustedOnly,
        _ => FieldKind.Other,
    };

    private RequestParse Malformed(string reason)
    {
        Reason = reason;
        return RequestParse.Malformed;
    }

    private RequestParse HandOver(string reason)
    {
        Reason = reason;
        return RequestParse.HandOver;
    }
}
