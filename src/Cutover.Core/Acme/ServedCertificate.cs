using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Cutover.Acme;

/// <summary>
/// A certificate ready for the TLS handshake: the leaf with its private key, the intermediates the server must
/// send, and the SslStreamCertificateContext built from both (what Kestrel's ServerCertificateSelector /
/// SslServerAuthenticationOptions.ServerCertificateContext take). Immutable; replaced, never changed.
/// </summary>
public sealed class ServedCertificate
{
    private ServedCertificate(X509Certificate2 leaf, X509Certificate2Collection intermediates)
    {
        Certificate = leaf;
        Intermediates = intermediates;
        Names = NamesOf(leaf);
        NotBefore = new DateTimeOffset(leaf.NotBefore.ToUniversalTime());
        NotAfter = new DateTimeOffset(leaf.NotAfter.ToUniversalTime());
        // offline: the chain is complete as the CA sent it; no AIA fetches from inside a handshake.
        Context = SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
    }

    public X509Certificate2 Certificate { get; }
    public X509Certificate2Collection Intermediates { get; }
    public SslStreamCertificateContext Context { get; }

    /// <summary>The dNSName SANs, lower case, sorted: the names this certificate is served for.</summary>
    public IReadOnlyList<string> Names { get; }

    public DateTimeOffset NotBefore { get; }
    public DateTimeOffset NotAfter { get; }

    /// <summary>A chain PEM (leaf first) and the leaf's PKCS#8 key PEM. Throws CryptographicException when they are not that.</summary>
    public static ServedCertificate FromPem(string chainPem, string privateKeyPem)
    {
        var certificates = CertificatePem.All(chainPem);
        if (certificates.Count == 0) throw new CryptographicException("no CERTIFICATE in the chain");
        var leaf = X509Certificate2.CreateFromPem(CertificatePem.Blocks(chainPem, "CERTIFICATE")[0], privateKeyPem);
        if (!leaf.HasPrivateKey) throw new CryptographicException("the private key does not belong to the certificate");
        return new ServedCertificate(leaf, [.. certificates.Skip(1)]);
    }

    private static IReadOnlyList<string> NamesOf(X509Certificate2 leaf) => leaf.Extensions
        .OfType<X509SubjectAlternativeNameExtension>()
        .SelectMany(e => e.EnumerateDnsNames())
        .Select(n => n.ToLowerInvariant())
        .Distinct()
        .Order(StringComparer.Ordinal)
        .ToList();
}

/// <summary>PEM text -> its blocks and certificates.</summary>
public static class CertificatePem
{
    public static IReadOnlyList<string> Blocks(string pem, string label)
    {
        var blocks = new List<string>();
        var rest = pem.AsMemory();
        while (PemEncoding.TryFind(rest.Span, out var fields))
        {
            if (rest.Span[fields.Label].SequenceEqual(label)) blocks.Add(rest.Span[fields.Location].ToString());
            rest = rest[fields.Location.End..];
        }
        return blocks;
    }

    public static IReadOnlyList<X509Certificate2> All(string pem) =>
        Blocks(pem, "CERTIFICATE").Select(block => X509Certificate2.CreateFromPem(block)).ToList();

    public static X509Certificate2 Leaf(string chainPem) =>
        All(chainPem).FirstOrDefault() ?? throw new AcmeException("the ACME server's certificate download holds no CERTIFICATE");
}
