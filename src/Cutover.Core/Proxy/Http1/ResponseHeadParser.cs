using System.Text;

namespace Cutover.Proxy.Http1;

public enum ResponseParse
{
    Incomplete,
    Complete,
    /// <summary>Malformed head or framing from the instance: 502 to the client, the connection discarded.</summary>
    Malformed,
}

/// <summary>How the response body is delimited (RFC 9112 §6.3).</summary>
public enum ResponseFraming
{
    None,
    ContentLength,
    Chunked,
    /// <summary>Until the instance closes the connection.</summary>
    UntilClose,
}

/// <summary>
/// A response head from an instance, parsed strictly (the same line and field rules as requests), reused per
/// upstream exchange. Offsets point into the span given to <see cref="Parse"/>.
/// </summary>
internal sealed class ResponseHead
{
    /// <summary>SocketsHttpHandler's default MaxResponseHeadersLength (64 KiB): a larger head is a 502.</summary>
    public const int MaxLength = 64 * 1024;
    private const int MaxFields = 200;

    public readonly HeaderField[] Fields = new HeaderField[MaxFields];
    public int FieldCount;
    public int Length;
    public int Status;
    /// <summary>The reason phrase (may be empty).</summary>
    public int ReasonStart;
    public int ReasonLength;
    public ResponseFraming Framing;
    public long ContentLength;
    /// <summary>False when the instance said Connection: close or spoke HTTP/1.0 without keep-alive.</summary>
    public bool KeepAlive;
    public string? Reason;

    /// <param name="bodyForbidden">HEAD requests: no body whatever the head says.</param>
    public ResponseParse Parse(ReadOnlySpan<byte> buffer, bool bodyForbidden)
    {
        FieldCount = Length = Status = ReasonStart = ReasonLength = 0;
        ContentLength = -1;
        Reason = null;
        var line = HttpSyntax.NextLine(buffer, 0, out var lineLength);
        if (line == LineResult.Incomplete) return buffer.Length > MaxLength ? Malformed("response head too large") : ResponseParse.Incomplete;
        if (line == LineResult.Malformed) return Malformed("status line not ended by CRLF");
        var statusLine = buffer[..lineLength];
        bool http10;
        if (statusLine.StartsWith("HTTP/1.1 "u8)) http10 = false;
        else if (statusLine.StartsWith("HTTP/1.0 "u8)) http10 = true;
        else return Malformed("not an HTTP/1.x status line");
        if (statusLine.Length < 12 || !char.IsAsciiDigit((char)statusLine[9]) || !char.IsAsciiDigit((char)statusLine[10]) || !char.IsAsciiDigit((char)statusLine[11]))
            return Malformed("malformed status code");
        Status = (statusLine[9] - '0') * 100 + (statusLine[10] - '0') * 10 + (statusLine[11] - '0');
        if (Status is < 100 or > 599) return Malformed("status code out of range");
        if (statusLine.Length > 12)
        {
            if (statusLine[12] != ' ') return Malformed("malformed status line");
            var reason = statusLine[13..];
            if (!HttpSyntax.IsFieldValue(reason)) return Malformed("control character in the reason phrase");
            ReasonStart = 13;
            ReasonLength = reason.Length;
        }
        KeepAlive = !http10;

        var position = lineLength + 2;
        var contentLengths = 0;
        var chunked = false;
        var transferEncoding = false;
        while (true)
        {
            line = HttpSyntax.NextLine(buffer, position, out lineLength);
            if (line == LineResult.Incomplete) return buffer.Length > MaxLength ? Malformed("response head too large") : ResponseParse.Incomplete;
            if (line == LineResult.Malformed) return Malformed("header line not ended by CRLF");
            if (lineLength == 0)
            {
                Length = position + 2;
                break;
            }
            var text = buffer.Slice(position, lineLength);
            if (text[0] is (byte)' ' or (byte)'\t') return Malformed("obs-fold");
            if (!HttpSyntax.TryParseField(text, out var nameLength, out var valueStart, out var valueLength)) return Malformed("malformed header field");
            if (FieldCount == MaxFields) return Malformed("too many header fields");
            var name = text[..nameLength];
            var value = text.Slice(valueStart, valueLength);
            var kind = Classify(name);
            switch (kind)
            {
                case FieldKind.ContentLength:
                    if (++contentLengths > 1) return Malformed("more than one Content-Length");
                    if (!HttpSyntax.TryParseContentLength(value, out ContentLength)) return Malformed("invalid Content-Length");
                    break;
                case FieldKind.TransferEncoding:
                    if (transferEncoding) return Malformed("more than one Transfer-Encoding");
                    transferEncoding = true;
                    // Only chunked as the final coding delimits the body; anything else cannot be passed on safely.
                    if (!Ascii.EqualsIgnoreCase(HttpSyntax.LastListElement(value), "chunked"u8)) return Malformed("Transfer-Encoding not ending in chunked");
                    chunked = true;
                    break;
                case FieldKind.Connection:
                    if (HttpSyntax.ListContains(value, "close"u8)) KeepAlive = false;
                    else if (http10 && HttpSyntax.ListContains(value, "keep-alive"u8)) KeepAlive = true;
                    break;
            }
            Fields[FieldCount++] = new HeaderField(position, nameLength, position + valueStart, valueLength, kind);
            position += lineLength + 2;
        }
        if (chunked && contentLengths > 0) return Malformed("both Content-Length and Transfer-Encoding");
        if (bodyForbidden || Status is < 200 or 204 or 304) Framing = ResponseFraming.None;
        else if (chunked) Framing = ResponseFraming.Chunked;
        else if (contentLengths > 0) Framing = ContentLength == 0 ? ResponseFraming.None : ResponseFraming.ContentLength;
        else
        {
            Framing = ResponseFraming.UntilClose;
            KeepAlive = false;
        }
        return ResponseParse.Complete;
    }

    private static FieldKind Classify(ReadOnlySpan<byte> name) => name.Length switch
    {
        2 when Ascii.EqualsIgnoreCase(name, "TE"u8) => FieldKind.HopByHop,
        7 when Ascii.EqualsIgnoreCase(name, "Upgrade"u8) => FieldKind.Upgrade,
        7 when Ascii.EqualsIgnoreCase(name, "Trailer"u8) => FieldKind.HopByHop,
        10 when Ascii.EqualsIgnoreCase(name, "Connection"u8) => FieldKind.Connection,
        10 when Ascii.EqualsIgnoreCase(name, "Keep-Alive"u8) => FieldKind.HopByHop,
        14 when Ascii.EqualsIgnoreCase(name, "Content-Length"u8) => FieldKind.ContentLength,
        16 when Ascii.EqualsIgnoreCase(name, "Proxy-Connection"u8) => FieldKind.HopByHop,
        17 when Ascii.EqualsIgnoreCase(name, "Transfer-Encoding"u8) => FieldKind.TransferEncoding,
        25 when Ascii.EqualsIgnoreCase(name, "Strict-Transport-Security"u8) => FieldKind.StrictTransportSecurity,
        _ => FieldKind.Other,
    };

    private ResponseParse Malformed(string reason)
    {
        Reason = reason;
        return ResponseParse.Malformed;
    }
}
