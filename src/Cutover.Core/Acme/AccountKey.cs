using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Cutover.Acme;

/// <summary>
/// The ACME account key: ECDSA P-256, signs every request (ES256) and names the account by its JWK thumbprint,
/// which is also the second half of every http-01 key authorization.
/// </summary>
public sealed class AccountKey : IDisposable
{
    private readonly ECDsa _key;

    private AccountKey(ECDsa key)
    {
        _key = key;
        var point = key.ExportParameters(includePrivateParameters: false).Q;
        Jwk = JwkThumbprint.Canonical([
            new("crv", "P-256"),
            new("kty", "EC"),
            new("x", Base64Url.EncodeToString(point.X)),
            new("y", Base64Url.EncodeToString(point.Y)),
        ]);
        Thumbprint = JwkThumbprint.Of(Jwk);
    }

    /// <summary>The public key as RFC 7638 canonical JSON: the members crv, kty, x, y sorted, no whitespace.</summary>
    public string Jwk { get; }

    /// <summary>base64url(SHA-256(<see cref="Jwk"/>)), unpadded.</summary>
    public string Thumbprint { get; }

    public static AccountKey Create() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>Reads a PKCS#8 PEM written by <see cref="ExportPem"/>; any other key is refused, never silently replaced.</summary>
    public static AccountKey FromPem(string pem)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportFromPem(pem);
            var curve = key.ExportParameters(includePrivateParameters: false).Curve;
            if (key.KeySize != 256 || curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
                throw new CryptographicException($"the account key is not an ECDSA P-256 key (curve {curve.Oid.FriendlyName ?? curve.Oid.Value})");
            return new AccountKey(key);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    public string ExportPem() => _key.ExportPkcs8PrivateKeyPem();

    /// <summary>What the http-01 responder serves for a token (RFC 8555 8.1).</summary>
    public string KeyAuthorization(string token) => token + "." + Thumbprint;

    /// <summary>
    /// ES256 over the JWS signing input. JWS wants r||s (64 bytes, RFC 7518 3.4), which is .NET's IEEE P1363 format,
    /// not the DER SEQUENCE that OpenSSL-style APIs return.
    /// </summary>
    public byte[] Sign(ReadOnlySpan<byte> signingInput) =>
        _key.SignData(signingInput, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    /// <summary>Checks an ES256 signature: used by the tests, and cheap enough to keep honest.</summary>
    public bool Verify(ReadOnlySpan<byte> signingInput, ReadOnlySpan<byte> signature) =>
        _key.VerifyData(signingInput, signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);

    public void Dispose() => _key.Dispose();
}

/// <summary>RFC 7638 JWK thumbprints: the required members in lexicographic order, no whitespace, SHA-256, base64url.</summary>
public static class JwkThumbprint
{
    public static string Canonical(IEnumerable<KeyValuePair<string, string>> requiredMembers)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = false }))
        {
            writer.WriteStartObject();
            foreach (var (name, value) in requiredMembers.OrderBy(m => m.Key, StringComparer.Ordinal))
                writer.WriteString(name, value);
            writer.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    public static string Of(string canonicalJwk) => Base64Url.EncodeToString(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalJwk)));

    public static string Of(IEnumerable<KeyValuePair<string, string>> requiredMembers) => Of(Canonical(requiredMembers));
}
