using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Cutover.Acme;

/// <summary>
/// RFC 8555 over HttpClient, one account key per client: the directory, nonces, signed POSTs (badNonce retried with
/// the nonce of the refusal, bounded), the account, orders, authorizations, challenges, finalize and download.
/// The order of those calls is <see cref="AcmeIssuer"/>'s job.
/// </summary>
public sealed class AcmeClient : IDisposable
{
    private const string JoseJson = "application/jose+json";
    private const string ProblemJson = "application/problem+json";

    private readonly HttpClient _http;
    private readonly AccountKey _key;
    private readonly AcmeOptions _options;
    private readonly TimeProvider _time;
    private readonly SemaphoreSlim _setup = new(1, 1);
    private AcmeDirectory? _directory;
    private Uri? _account;
    private string? _nonce;
    private int _badNonceRetries;

    /// <summary>Refuses options that could never work (InputException: bad input, exit 2) before any request.</summary>
    public AcmeClient(AcmeOptions options, AccountKey key, TimeProvider? time = null)
    {
        Validate(options);
        _options = options;
        _key = key;
        _time = time ?? TimeProvider.System;
        _http = new HttpClient(Handler(options.CaCertPath)) { Timeout = TimeSpan.FromSeconds(30) };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("cutover", typeof(AcmeClient).Assembly.GetName().Version?.ToString(3)));
    }

    public AccountKey Key => _key;

    /// <summary>How many requests were signed again after a badNonce refusal, over this client's life.</summary>
    public int BadNonceRetries => Volatile.Read(ref _badNonceRetries);

    /// <summary>The account URL (the kid of every later request), registering the account on first use.</summary>
    public async Task<Uri> AccountAsync(CancellationToken cancellationToken)
    {
        if (_account is { } known) return known;
        await _setup.WaitAsync(cancellationToken);
        try
        {
            if (_account is not null) return _account;
            var directory = await DirectoryAsync(cancellationToken);
            var payload = new JsonObject { ["termsOfServiceAgreed"] = true };
            if (!string.IsNullOrWhiteSpace(_options.Email)) payload["contact"] = new JsonArray("mailto:" + _options.Email.Trim());
            // newAccount is signed with the jwk; for a key the server knows it answers 200 with the same Location.
            var reply = await PostAsync(directory.NewAccount, payload, "registering the ACME account", useJwk: true, cancellationToken);
            _account = reply.Location ?? throw new AcmeException($"the ACME server's newAccount answer from {directory.NewAccount} has no Location");
            return _account;
        }
        finally
        {
            _setup.Release();
        }
    }

    public async Task<AcmeOrder> NewOrderAsync(IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        var directory = await DirectoryAsync(cancellationToken);
        var payload = new JsonObject
        {
            ["identifiers"] = new JsonArray(names.Select(n => (JsonNode)new JsonObject { ["type"] = "dns", ["value"] = n }).ToArray()),
        };
        var reply = await PostAsync(directory.NewOrder, payload, $"ordering a certificate for {string.Join(", ", names)}", useJwk: false, cancellationToken);
        var url = reply.Location ?? throw new AcmeException($"the ACME server's newOrder answer from {directory.NewOrder} has no Location");
        return AcmeResources.Order(reply.Json(), url);
    }

    public async Task<(AcmeOrder Order, TimeSpan? RetryAfter)> GetOrderAsync(Uri url, CancellationToken cancellationToken)
    {
        var reply = await PostAsync(url, null, "reading the order", useJwk: false, cancellationToken);
        return (AcmeResources.Order(reply.Json(), url), reply.RetryAfter);
    }

    public async Task<(AcmeAuthorization Authorization, TimeSpan? RetryAfter)> GetAuthorizationAsync(Uri url, CancellationToken cancellationToken)
    {
        var reply = await PostAsync(url, null, "reading an authorization", useJwk: false, cancellationToken);
        return (AcmeResources.Authorization(reply.Json(), url), reply.RetryAfter);
    }

    /// <summary>Tells the server the challenge is ready to be checked: the payload is an empty object, not empty.</summary>
    public async Task AnswerChallengeAsync(Uri url, CancellationToken cancellationToken) =>
        await PostAsync(url, new JsonObject(), "answering a challenge", useJwk: false, cancellationToken);

    public async Task<AcmeOrder> FinalizeAsync(AcmeOrder order, byte[] csrDer, CancellationToken cancellationToken)
    {
        var payload = new JsonObject { ["csr"] = System.Buffers.Text.Base64Url.EncodeToString(csrDer) };
        var reply = await PostAsync(order.Finalize, payload, "finalizing the order", useJwk: false, cancellationToken);
        return AcmeResources.Order(reply.Json(), order.Url);
    }

    /// <summary>The PEM chain, leaf first (RFC 8555 7.4.2).</summary>
    public async Task<string> DownloadCertificateAsync(Uri url, CancellationToken cancellationToken)
    {
        var reply = await PostAsync(url, null, "downloading the certificate", useJwk: false, cancellationToken, accept: "application/pem-certificate-chain");
        return reply.Body;
    }

    /// <summary>
    /// Polls until <paramref name="done"/>: waits Retry-After when the server sends one (capped), else the poll
    /// interval; fails after PollTimeout.
    /// </summary>
    public async Task<T> PollAsync<T>(Func<CancellationToken, Task<(T Value, TimeSpan? RetryAfter)>> read, Func<T, bool> done, Func<T, string> describe, CancellationToken cancellationToken)
    {
        var deadline = _time.GetUtcNow() + _options.PollTimeout;
        while (true)
        {
            var (value, retryAfter) = await read(cancellationToken);
            if (done(value)) return value;
            if (_time.GetUtcNow() >= deadline)
                throw new AcmeException($"{describe(value)} after {_options.PollTimeout.TotalSeconds:0} s of waiting");
            var wait = retryAfter ?? _options.PollInterval;
            if (wait < TimeSpan.Zero) wait = TimeSpan.Zero;
            if (wait > _options.MaxPollInterval) wait = _options.MaxPollInterval;
            await Task.Delay(wait, _time, cancellationToken);
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _setup.Dispose();
    }

    private async Task<AcmeDirectory> DirectoryAsync(CancellationToken cancellationToken)
    {
        if (_directory is { } known) return known;
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Get, _options.Directory), "reading the ACME directory", cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode) throw Refusal(response, body, $"reading the ACME directory {_options.Directory}");
        return _directory = AcmeResources.Directory(ParseJson(body, _options.Directory), _options.Directory);
    }

    private async Task<string> NonceAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _nonce, null) is { } saved) return saved;
        var directory = await DirectoryAsync(cancellationToken);
        using var response = await SendAsync(() => new HttpRequestMessage(HttpMethod.Head, directory.NewNonce), "getting a nonce", cancellationToken);
        return ReplayNonce(response) ?? throw new AcmeException($"the ACME server's newNonce answer ({(int)response.StatusCode}) from {directory.NewNonce} has no Replay-Nonce");
    }

    private async Task<AcmeReply> PostAsync(Uri url, JsonNode? payload, string what, bool useJwk, CancellationToken cancellationToken, string? accept = null)
    {
        try
        {
            return await PostOnceAsync(url, payload, what, useJwk, cancellationToken, accept);
        }
        catch (AcmeProblemException e) when (e.Type == AcmeProblemException.AccountDoesNotExist && !useJwk)
        {
            // The server no longer knows the account URL this client registered (a CA that lost or deactivated it,
            // a test CA restarted): register the key again, once, and send the request under the new URL.
            Interlocked.Exchange(ref _account, null);
            return await PostOnceAsync(url, payload, what, useJwk, cancellationToken, accept);
        }
    }

    private async Task<AcmeReply> PostOnceAsync(Uri url, JsonNode? payload, string what, bool useJwk, CancellationToken cancellationToken, string? accept)
    {
        var account = useJwk ? null : await AccountAsync(cancellationToken);
        for (var attempt = 0; ; attempt++)
        {
            var body = Jws.Sign(_key, url, await NonceAsync(cancellationToken), account, payload);
            using var response = await SendAsync(() =>
            {
                var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue(JoseJson);
                if (accept is not null) request.Headers.Accept.ParseAdd(accept);
                return request;
            }, what, cancellationToken);
            var text = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.IsSuccessStatusCode)
                return new AcmeReply(text, response.Headers.Location is { } location ? new Uri(url, location) : null, RetryAfter(response), url);
            var refusal = Refusal(response, text, what);
            // The refusal carried a fresh nonce (saved by SendAsync): sign again with it.
            if (refusal is AcmeProblemException { Type: AcmeProblemException.BadNonce } && attempt < _options.MaxBadNonceRetries)
            {
                Interlocked.Increment(ref _badNonceRetries);
                continue;
            }
            throw refusal;
        }
    }

    /// <summary>Sends one request, keeps the Replay-Nonce of every reply, and turns transport failures into AcmeException.</summary>
    private async Task<HttpResponseMessage> SendAsync(Func<HttpRequestMessage> request, string what, CancellationToken cancellationToken)
    {
        using var message = request();
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(message, cancellationToken);
        }
        catch (HttpRequestException e)
        {
            throw new AcmeException($"{what}: could not reach the ACME server at {message.RequestUri}: {e.Message}", e);
        }
        catch (TaskCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new AcmeException($"{what}: the ACME server at {message.RequestUri} did not answer within {_http.Timeout.TotalSeconds:0} s", e);
        }
        if (ReplayNonce(response) is { } nonce) Volatile.Write(ref _nonce, nonce);
        return response;
    }

    private static string? ReplayNonce(HttpResponseMessage response) =>
        response.Headers.TryGetValues("Replay-Nonce", out var values) ? values.FirstOrDefault() : null;

    private TimeSpan? RetryAfter(HttpResponseMessage response) => response.Headers.RetryAfter switch
    {
        { Delta: { } delta } => delta,
        { Date: { } date } => date - _time.GetUtcNow(),
        _ => null,
    };

    private static AcmeException Refusal(HttpResponseMessage response, string body, string what)
    {
        var status = (int)response.StatusCode;
        if (response.Content.Headers.ContentType?.MediaType == ProblemJson)
        {
            try
            {
                var problem = JsonNode.Parse(body);
                return new AcmeProblemException(what, problem?["type"]?.GetValue<string>() ?? "about:blank", problem?["detail"]?.GetValue<string>(), status);
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
                // not a readable problem document: fall through to the plain description
            }
        }
        var excerpt = body.Length > 200 ? body[..200] + "..." : body;
        return new AcmeException($"{what}: the ACME server answered {status} {response.ReasonPhrase}{(excerpt.Length > 0 ? ": " + excerpt.ReplaceLineEndings(" ") : "")}");
    }

    private static JsonNode ParseJson(string body, Uri url)
    {
        try
        {
            return JsonNode.Parse(body) ?? throw new AcmeException($"the ACME server's answer from {url} is empty");
        }
        catch (JsonException e)
        {
            throw new AcmeException($"the ACME server's answer from {url} is not JSON: {e.Message}", e);
        }
    }

    private static void Validate(AcmeOptions options)
    {
        // RFC 8555 6.1: every ACME request goes over HTTPS.
        if (!options.Directory.IsAbsoluteUri || options.Directory.Scheme != Uri.UriSchemeHttps)
            throw new InputException($"proxy.tls.acme.directory {options.Directory}: an ACME directory is an https:// URL");
        if (options.Email is { } email && !IsMailbox(email.Trim()))
            throw new InputException($"proxy.tls.acme.email \"{email}\": not an email address (name@domain)");
    }

    private static bool IsMailbox(string email)
    {
        var at = email.IndexOf('@');
        return at > 0 && at == email.LastIndexOf('@') && at < email.Length - 1 && email[(at + 1)..].Contains('.')
            && !email.Any(c => char.IsWhiteSpace(c) || c is ',' or '<' or '>' or '"' or ':' or ';');
    }

    private static SocketsHttpHandler Handler(string? caCertPath)
    {
        var handler = new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) };
        if (caCertPath is null) return handler;
        var extraRoot = LoadCaCertificate(caCertPath);
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            TrustedWithExtraRoot(extraRoot, certificate, chain, errors);
        return handler;
    }

    private static X509Certificate2 LoadCaCertificate(string path)
    {
        try
        {
            return X509Certificate2.CreateFromPem(File.ReadAllText(path));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new InputException($"proxy.tls.acme.ca_cert {path}: not a readable PEM certificate ({e.Message})");
        }
    }

    /// <summary>
    /// The system's verdict first; only a chain the system could not complete is built again with the extra root as
    /// a trust anchor. A name mismatch is never forgiven.
    /// </summary>
    private static bool TrustedWithExtraRoot(X509Certificate2 extraRoot, X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
    {
        if (errors == SslPolicyErrors.None) return true;
        if (errors != SslPolicyErrors.RemoteCertificateChainErrors || certificate is not X509Certificate2 leaf) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(extraRoot);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (presented is not null)
            foreach (var element in presented.ChainElements) chain.ChainPolicy.ExtraStore.Add(element.Certificate);
        return chain.Build(leaf);
    }

    private sealed record AcmeReply(string Body, Uri? Location, TimeSpan? RetryAfter, Uri Url)
    {
        public JsonNode Json() => ParseJson(Body, Url);
    }
}
