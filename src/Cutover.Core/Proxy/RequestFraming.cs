using System.Buffers;
using Microsoft.AspNetCore.Http;

namespace Cutover.Proxy;

/// <summary>
/// What Kestrel accepts in a request head and the proxy must refuse before forwarding (issue 14 item 1; the corpus is
/// tests/Cutover.Tests/Proxy/RequestSmugglingTests.cs). Each is a message whose framing or fields a strict recipient
/// reads differently from Kestrel, so forwarding it would let the two disagree about where a request ends or what it
/// says; the answer closes the connection, so bytes after the head are never read as another request.
/// </summary>
internal static class RequestFraming
{
    /// <summary>tchar of RFC 9110 §5.6.2: a field name is a token.</summary>
    private static readonly SearchValues<char> TokenChars =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    /// <summary>The status and reason to refuse <paramref name="request"/> with, or null when it may be forwarded.</summary>
    public static (int Status, string Reason)? Refusal(HttpRequest request)
    {
        var headers = request.Headers;
        var http1 = HttpProtocol.IsHttp11(request.Protocol) || HttpProtocol.IsHttp10(request.Protocol);
        if (http1 && headers.TransferEncoding is { Count: > 0 } transferEncoding)
        {
            // RFC 9112 §6.1: HTTP/1.0 has no Transfer-Encoding; such a message's framing is faulty (Kestrel decodes it
            // as chunked and keeps a keep-alive connection open).
            if (HttpProtocol.IsHttp10(request.Protocol))
                return (StatusCodes.Status400BadRequest, "Transfer-Encoding in an HTTP/1.0 request\n");
            // Kestrel decodes chunked once whatever comes before it. "chunked, chunked" (RFC 9112 §7: never applied
            // twice) is refused as HAProxy does; a coding before chunked is one the proxy does not implement (RFC 9112
            // §6.1: 501), and decoding only the chunked would hand the app a body still coded without saying so.
            var codings = 0;
            foreach (var line in transferEncoding)
                foreach (var coding in (line ?? "").Split(','))
                {
                    if (coding.Trim(' ', '\t').Length == 0) continue;
                    codings++;
                    if (!coding.Trim(' ', '\t').Equals("chunked", StringComparison.OrdinalIgnoreCase))
                        return (StatusCodes.Status501NotImplemented, $"transfer coding '{coding.Trim(' ', '\t')}' is not implemented\n");
                }
            if (codings > 1) return (StatusCodes.Status400BadRequest, "chunked transfer coding applied more than once\n");
        }
        // RFC 9112 §6.3(5), RFC 9110 §8.6: Content-Length = 1*DIGIT. Kestrel takes "+5" as 5.
        if (http1 && headers.ContentLength is not null)
            foreach (var value in headers["Content-Length"])
                if (value is null || value.Length == 0 || value.AsSpan().ContainsAnyExceptInRange('0', '9'))
                    return (StatusCodes.Status400BadRequest, "Content-Length is not a number\n");
        // RFC 9112 §2.2: a field name that is not a token is not HTTP; answered 400 and closed. Kestrel passes it and
        // the forwarder would drop it silently (HttpClient refuses such a name).
        foreach (var header in headers)
            if (header.Key.Length == 0 || header.Key.AsSpan().ContainsAnyExcept(TokenChars))
                return (StatusCodes.Status400BadRequest, "a header name is not a token\n");
        return null;
    }
}
