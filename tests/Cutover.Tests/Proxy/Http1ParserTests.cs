using System.Text;
using Cutover.Proxy.Http1;

namespace Cutover.Tests.Proxy;

/// <summary>
/// The fast path's parsers on a corpus of heads: what RFC 9112 says to refuse is refused (400 on requests, 502 on
/// responses), what is legal but uncommon goes to Kestrel, and a well-formed head is read as written.
/// </summary>
public class Http1ParserTests
{
    private static RequestParse ParseRequest(string head, out RequestHead parsed)
    {
        parsed = new RequestHead();
        return parsed.Parse(Encoding.Latin1.GetBytes(head), 256 * 1024);
    }

    [Theory]
    // Framing attacks: two Content-Lengths (equal or not, or as a list), an invalid one, Transfer-Encoding but one chunked alone (Kestrel decides)
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", RequestParse.Malformed)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", RequestParse.Malformed)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", RequestParse.Malformed)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", RequestParse.Malformed)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", RequestParse.Malformed)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", RequestParse.Malformed)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", RequestParse.HandOver)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", RequestParse.HandOver)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", RequestParse.HandOver)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", RequestParse.HandOver)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", RequestParse.HandOver)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", RequestParse.HandOver)]
    // One Transfer-Encoding of exactly chunked (any case) and no Content-Length: relayed here, chunk by chunk
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", RequestParse.Complete)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tCHUNKED \r\n\r\n", RequestParse.Complete)]
    // Line and field syntax: obs-fold, whitespace before the colon, bare CR, bare LF, NUL and controls, empty or odd names
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n continued\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\tcontinued\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\rX-B: 2\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\nX-A: 1\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\nHost: a\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\0b\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX-A: a\u0001b\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nX(A): 1\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nno colon\r\n\r\n", RequestParse.Malformed)]
    // Host: exactly one
    [InlineData("GET / HTTP/1.1\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", RequestParse.Malformed)]
    // Request line
    [InlineData("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", RequestParse.Malformed)]
    [InlineData("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET /a\u0001b HTTP/1.1\r\nHost: a\r\n\r\n", RequestParse.Malformed)]
    [InlineData("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", RequestParse.HandOver)]
    [InlineData("GET / HTTP/1.0\r\nHost: a\r\n\r\n", RequestParse.HandOver)]
    [InlineData("GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", RequestParse.HandOver)]
    [InlineData("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", RequestParse.HandOver)]
    [InlineData("CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", RequestParse.HandOver)]
    [InlineData("GET /a%2Fb HTTP/1.1\r\nHost: a\r\n\r\n", RequestParse.HandOver)]
    [InlineData("GET /a/../b HTTP/1.1\r\nHost: a\r\n\r\n", RequestParse.HandOver)]
    [InlineData("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", RequestParse.HandOver)]
    // What the fast path does not do: upgrades, Expect, unusual Host values
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", RequestParse.HandOver)]
    [InlineData("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n", RequestParse.HandOver)]
    [InlineData("GET / HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", RequestParse.HandOver)]
    [InlineData("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", RequestParse.HandOver)]
    [InlineData("GET / HTTP/1.1\r\nHost:\r\n\r\n", RequestParse.HandOver)]
    // Complete and served here
    [InlineData("GET /x?y=1 HTTP/1.1\r\nHost: shop.test:8080\r\nX-A:  spaced value  \r\n\r\n", RequestParse.Complete)]
    [InlineData("POST /orders HTTP/1.1\r\nhost: a\r\ncontent-length: 12\r\nConnection: close\r\n\r\n", RequestParse.Complete)]
    // Not complete yet
    [InlineData("GET / HTTP/1.1\r\nHost: a\r\n", RequestParse.Incomplete)]
    [InlineData("GET / HTT", RequestParse.Incomplete)]
    public void Request_heads_are_refused_handed_over_or_served_as_RFC_9112_says(string head, RequestParse expected)
    {
        var result = ParseRequest(head, out var parsed);
        Assert.True(expected == result, $"{expected} expected, got {result} ({parsed.Reason})");
    }

    [Fact]
    public void A_complete_head_is_read_as_written()
    {
        var text = "POST /orders?id=7 HTTP/1.1\r\nHost: Shop.test:8080\r\nX-A:  spaced value  \r\ncontent-length: 12\r\nConnection: close\r\n\r\nbody follows";
        var bytes = Encoding.ASCII.GetBytes(text);
        Assert.Equal(RequestParse.Complete, ParseRequest(text, out var head));
        Assert.Equal(text.IndexOf("body", StringComparison.Ordinal), head.Length);
        Assert.Equal("POST", Encoding.ASCII.GetString(head.Method(bytes)));
        Assert.Equal("/orders?id=7", Encoding.ASCII.GetString(head.Target(bytes)));
        Assert.Equal(12, head.ContentLength);
        Assert.True(head.ConnectionClose);
        Assert.Equal("Shop.test:8080", Encoding.ASCII.GetString(head.Value(bytes, head.Fields[head.HostField])));
        Assert.Equal("spaced value", Encoding.ASCII.GetString(head.Value(bytes, head.Fields[1])));
        // Kestrel's count for max_request_headers: name + value + 4 per field
        Assert.Equal(4 + 14 + 4 + 3 + 12 + 4 + 14 + 2 + 4 + 10 + 5 + 4, head.HeaderBytes);
    }

    [Fact]
    public void A_head_larger_than_the_ceiling_or_with_too_many_fields_goes_to_Kestrel_which_answers_431()
    {
        var many = "GET / HTTP/1.1\r\nHost: a\r\n" + string.Concat(Enumerable.Range(0, 101).Select(i => $"X-{i}: v\r\n")) + "\r\n";
        Assert.Equal(RequestParse.HandOver, ParseRequest(many, out _));
        var head = new RequestHead();
        var large = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: a\r\nX-A: " + new string('a', 2000));
        Assert.Equal(RequestParse.Incomplete, head.Parse(large, 4096));
        Assert.Equal(RequestParse.HandOver, head.Parse(large, 1024));
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false, ResponseParse.Complete, ResponseFraming.ContentLength, true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, ResponseParse.Complete, ResponseFraming.Chunked, true)]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", false, ResponseParse.Complete, ResponseFraming.Chunked, true)]
    [InlineData("HTTP/1.1 200 OK\r\n\r\n", false, ResponseParse.Complete, ResponseFraming.UntilClose, false)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", false, ResponseParse.Complete, ResponseFraming.ContentLength, false)]
    [InlineData("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\n", false, ResponseParse.Complete, ResponseFraming.ContentLength, false)]
    [InlineData("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, ResponseParse.Complete, ResponseFraming.None, true)]
    [InlineData("HTTP/1.1 304 Not Modified\r\n\r\n", false, ResponseParse.Complete, ResponseFraming.None, true)]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, ResponseParse.Complete, ResponseFraming.None, true)]
    [InlineData("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, ResponseParse.Complete, ResponseFraming.None, true)]
    public void Response_heads_are_framed_by_RFC_9112_section_6_3(string head, bool forHead, ResponseParse expected, ResponseFraming framing, bool keepAlive)
    {
        var parsed = new ResponseHead();
        Assert.Equal(expected, parsed.Parse(Encoding.ASCII.GetBytes(head), forHead));
        Assert.Equal(framing, parsed.Framing);
        Assert.Equal(keepAlive, parsed.KeepAlive);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\nX-A: 1\r\n\r\n")]
    [InlineData("HTTP/1.1 2000 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 099 OK\r\n\r\n")]
    [InlineData("HTTP/2 200 OK\r\n\r\n")]
    [InlineData("garbage\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nBad Header\r\n\r\n")]
    public void Malformed_response_heads_and_framing_are_refused(string head)
    {
        Assert.Equal(ResponseParse.Malformed, new ResponseHead().Parse(Encoding.ASCII.GetBytes(head), bodyForbidden: false));
    }

    [Theory]
    [InlineData("5\r\nhello\r\n0\r\n\r\n", true)]
    [InlineData("5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n", true)]
    [InlineData("5\r\nhello\r\n0\r\n\r\nEXTRA", true)]
    [InlineData("g\r\nhello\r\n0\r\n\r\n", false)]
    [InlineData("5\r\nhelloX\r\n0\r\n\r\n", false)]
    [InlineData("5\nhello\r\n0\r\n\r\n", false)]
    [InlineData("\r\n5\r\nhello\r\n0\r\n\r\n", false)]
    [InlineData("fffffffffffffffff\r\n", false)]
    [InlineData("5\r\nhello\r\n0\r\nX-Trailer: 1\n\r\n", false)]
    public void A_chunked_body_is_followed_to_its_end_and_bad_framing_is_caught(string body, bool valid)
    {
        var bytes = Encoding.ASCII.GetBytes(body);
        var validator = new ChunkedBodyValidator();
        validator.Reset();
        // Byte by byte, as the worst split a network could make.
        var consumed = 0;
        for (var i = 0; i < bytes.Length && !validator.IsDone && !validator.IsInvalid; i++) consumed += validator.Feed(bytes.AsSpan(i, 1));
        Assert.Equal(valid, validator.IsDone);
        Assert.Equal(!valid, validator.IsInvalid);
        if (valid) Assert.Equal(body.Replace("EXTRA", "").Length, consumed);
        // And all at once: the same verdict, and the body ends where it ends.
        validator.Reset();
        var used = validator.Feed(bytes);
        Assert.Equal(valid, validator.IsDone);
        if (valid) Assert.Equal(body.Replace("EXTRA", "").Length, used);
    }
}
