namespace Cutover.Acme;

/// <summary>
/// What `proxy.tls.acme` says: the directory URL, the contact address, and an extra CA to trust for the ACME
/// server's own HTTPS (a private or test CA such as pebble's).
/// </summary>
public sealed record AcmeOptions
{
    public static readonly Uri LetsEncryptProduction = new("https://acme-v02.api.letsencrypt.org/directory");

    public Uri Directory { get; init; } = LetsEncryptProduction;

    /// <summary>Sent as mailto: contact on the account; null registers none.</summary>
    public string? Email { get; init; }

    /// <summary>PEM file of a CA certificate trusted in addition to the system's for the ACME server's TLS.</summary>
    public string? CaCertPath { get; init; }

    /// <summary>
    /// How often one request may be retried after badNonce (RFC 8555 6.5: the client should retry with the nonce of
    /// the error). A nonce costs one round trip, so the bound is generous; it only stops a server that rejects all.
    /// </summary>
    public int MaxBadNonceRetries { get; init; } = 16;

    /// <summary>The wait between polls of an authorization or order when the server sends no Retry-After.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Retry-After is honoured up to this, so a server cannot park a deploy for hours.</summary>
    public TimeSpan MaxPollInterval { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one authorization or order may stay pending/processing before obtaining fails.</summary>
    public TimeSpan PollTimeout { get; init; } = TimeSpan.FromMinutes(2);
}
