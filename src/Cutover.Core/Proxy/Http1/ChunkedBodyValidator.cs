namespace Cutover.Proxy.Http1;

/// <summary>
/// Follows a chunked body (RFC 9112 §7.1) byte by byte as it streams through, so the proxy passes it on unchanged
/// yet knows where it ends and refuses what is not chunked: a size that is not hex or overflows, a chunk not ended by
/// CRLF, a bare CR or LF in a size line or trailer. One per exchange; <see cref="Reset"/> for the next.
/// </summary>
internal sealed class ChunkedBodyValidator
{
    private enum State : byte { Size, SizeMore, Extension, SizeLf, Data, DataCr, DataLf, TrailerStart, TrailerLine, TrailerLf, FinalLf, Done, Invalid }

    /// <summary>16 hex digits would overflow a long's sign.</summary>
    private const int MaxSizeDigits = 15;
    private State _state;
    private long _remaining;
    private int _digits;

    public bool IsDone => _state == State.Done;
    public bool IsInvalid => _state == State.Invalid;

    public void Reset()
    {
        _state = State.Size;
        _remaining = 0;
        _digits = 0;
    }

    /// <summary>
    /// Takes the next bytes of the body; returns how many belong to it (fewer than given only when the body ended
    /// inside <paramref name="bytes"/>, or at the first invalid byte, then <see cref="IsInvalid"/>).
    /// </summary>
    public int Feed(ReadOnlySpan<byte> bytes)
    {
        var i = 0;
        while (i < bytes.Length)
        {
            switch (_state)
            {
                case State.Data:
                {
                    var take = (int)Math.Min(_remaining, bytes.Length - i);
                    i += take;
                    _remaining -= take;
                    if (_remaining == 0) _state = State.DataCr;
                    continue;
                }
                case State.Done:
                case State.Invalid:
                    return i;
            }
            var c = bytes[i++];
            switch (_state)
            {
                case State.Size:
                case State.SizeMore:
                    var digit = HexValue(c);
                    if (digit >= 0)
                    {
                        if (++_digits > MaxSizeDigits) return Fail(i);
                        _remaining = _remaining * 16 + digit;
                        _state = State.SizeMore;
                    }
                    else if (_state == State.SizeMore && c is (byte)';' or (byte)' ' or (byte)'\t') _state = State.Extension;
                    else if (_state == State.SizeMore && c == '\r') _state = State.SizeLf;
                    else return Fail(i);
                    break;
                case State.Extension:
                    if (c == '\r') _state = State.SizeLf;
                    else if (c is < 0x20 and not (byte)'\t' or 0x7F) return Fail(i);
                    break;
                case State.SizeLf:
                    if (c != '\n') return Fail(i);
                    _digits = 0;
                    _state = _remaining == 0 ? State.TrailerStart : State.Data;
                    break;
                case State.DataCr:
                    if (c != '\r') return Fail(i);
                    _state = State.DataLf;
                    break;
                case State.DataLf:
                    if (c != '\n') return Fail(i);
                    _state = State.Size;
                    break;
                case State.TrailerStart:
                    if (c == '\r') _state = State.FinalLf;
                    else if (c is (byte)' ' or (byte)'\t' or (byte)'\n') return Fail(i);
                    else _state = State.TrailerLine;
                    break;
                case State.TrailerLine:
                    if (c == '\r') _state = State.TrailerLf;
                    else if (c is < 0x20 and not (byte)'\t' or 0x7F) return Fail(i);
                    break;
                case State.TrailerLf:
                    if (c != '\n') return Fail(i);
                    _state = State.TrailerStart;
                    break;
                case State.FinalLf:
                    if (c != '\n') return Fail(i);
                    _state = State.Done;
                    return i;
            }
        }
        return i;
    }

    private int Fail(int consumed)
    {
        _state = State.Invalid;
        return consumed - 1;
    }

    private static int HexValue(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };
}
