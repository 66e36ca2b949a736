using System.Buffers;
using System.Text;

namespace Cutover.Proxy.Http1;

/// <summary>The RFC 9110/9112 character classes and line rules the fast path's parsers share.</summary>
internal static class HttpSyntax
{
    /// <summary>tchar (RFC 9110 §5.6.2): what a method and a field name are made of.</summary>
    private static readonly SearchValues<byte> TokenChars =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    /// <summary>Control characters a field value may not hold (all but HTAB; NUL and DEL included).</summary>
    private static readonly SearchValues<byte> ValueForbidden = SearchValues.Create(
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 127]);

    public static bool IsToken(ReadOnlySpan<byte> text) => text.Length > 0 && text.IndexOfAnyExcept(TokenChars) < 0;

    public static bool IsFieldValue(ReadOnlySpan<byte> value) => value.IndexOfAny(ValueForbidden) < 0;

    /// <summary>
    /// The next line of a head at <paramref name="start"/>, without its CRLF. Lines end in CRLF only: a bare LF or a
    /// CR anywhere else is malformed (request smuggling hides in the difference between parsers that accept them).
    /// </summary>
    public static LineResult NextLine(ReadOnlySpan<byte> buffer, int start, out int lineLength)
    {
        lineLength = 0;
        var rest = buffer[start..];
        var lf = rest.IndexOf((byte)'\n');
        if (lf < 0)
        {
            // A CR followed by anything but LF is already a bare CR.
            var cr = rest.IndexOf((byte)'\r');
            return cr >= 0 && cr < rest.Length - 1 ? LineResult.Malformed : LineResult.Incomplete;
        }
        if (lf == 0 || rest[lf - 1] != '\r') return LineResult.Malformed;
        if (rest[..(lf - 1)].Contains((byte)'\r')) return LineResult.Malformed;
        lineLength = lf - 1;
        return LineResult.Line;
    }

    /// <summary>
    /// A field line "name: value": the name a token followed at once by the colon (no whitespace before it), the
    /// value without its surrounding spaces and tabs, free of control characters. False when malformed; a line that
    /// begins with whitespace (obs-fold) never gets here as a field, the callers refuse it first.
    /// </summary>
    public static bool TryParseField(ReadOnlySpan<byte> line, out int nameLength, out int valueStart, out int valueLength)
    {
        valueStart = valueLength = 0;
        nameLength = line.IndexOf((byte)':');
        if (nameLength <= 0 || !IsToken(line[..nameLength])) return false;
        var start = nameLength + 1;
        var end = line.Length;
        while (start < end && line[start] is (byte)' ' or (byte)'\t') start++;
        while (end > start && line[end - 1] is (byte)' ' or (byte)'\t') end--;
        if (!IsFieldValue(line[start..end])) return false;
        valueStart = start;
        valueLength = end - start;
        return true;
    }

    /// <summary>
    /// Content-Length as RFC 9110 §8.6 has it: one or more digits, nothing else (no sign, no list, no spaces), at
    /// most what a long holds.
    /// </summary>
    public static bool TryParseContentLength(ReadOnlySpan<byte> value, out long length)
    {
        length = 0;
        if (value.Length == 0 || value.Length > 18) return false;
        foreach (var c in value)
        {
            if (c is < (byte)'0' or > (byte)'9') return false;
            length = length * 10 + (c - '0');
        }
        return true;
    }

    /// <summary>Whether the comma-separated list <paramref name="list"/> holds <paramref name="token"/> (case-insensitive).</summary>
    public static bool ListContains(ReadOnlySpan<byte> list, ReadOnlySpan<byte> token)
    {
        foreach (var range in list.Split((byte)','))
            if (Ascii.EqualsIgnoreCase(list[range].Trim(" \t"u8), token)) return true;
        return false;
    }

    /// <summary>The last element of a comma-separated list, trimmed (the nearest hop's, for X-Forwarded-*).</summary>
    public static ReadOnlySpan<byte> LastListElement(ReadOnlySpan<byte> list)
    {
        var comma = list.LastIndexOf((byte)',');
        return (comma >= 0 ? list[(comma + 1)..] : list).Trim(" \t"u8);
    }
}

internal enum LineResult
{
    Line,
    Incomplete,
    Malformed,
}
