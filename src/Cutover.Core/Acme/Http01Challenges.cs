using System.Collections.Concurrent;

namespace Cutover.Acme;

/// <summary>
/// The http-01 answers in flight: token -> key authorization. The proxy's port-80 listener asks
/// <see cref="TryAnswer"/> for every request path before routing, and serves the body as text/plain with 200
/// (RFC 8555 8.3). Thread-safe: the issuer adds and removes while the listener reads.
/// </summary>
public sealed class Http01Challenges
{
    public const string PathPrefix = "/.well-known/acme-challenge/";

    private readonly ConcurrentDictionary<string, string> _answers = new(StringComparer.Ordinal);

    public int Count => _answers.Count;

    /// <summary>True when <paramref name="path"/> (the request path, no query) is a challenge this process is answering.</summary>
    public bool TryAnswer(string path, out string body)
    {
        body = "";
        if (!path.StartsWith(PathPrefix, StringComparison.Ordinal)) return false;
        var token = path[PathPrefix.Length..];
        if (!_answers.TryGetValue(token, out var keyAuthorization)) return false;
        body = keyAuthorization;
        return true;
    }

    /// <summary>Answers <paramref name="token"/> until the returned handle is disposed.</summary>
    public IDisposable Serve(string token, string keyAuthorization)
    {
        // Tokens are base64url (RFC 8555 8.1); anything else would let a server's answer shape our URL space.
        if (token.Length == 0 || !token.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            throw new AcmeException($"the ACME server sent an http-01 token that is not base64url: \"{token}\"");
        _answers[token] = keyAuthorization;
        return new Registration(this, token);
    }

    private sealed class Registration(Http01Challenges owner, string token) : IDisposable
    {
        public void Dispose() => owner._answers.TryRemove(token, out _);
    }
}
