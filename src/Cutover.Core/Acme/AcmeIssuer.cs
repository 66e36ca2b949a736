using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Cutover.Acme;

/// <summary>
/// One certificate from an ACME server by http-01 (RFC 8555 7.4): new order; each authorization still pending gets
/// its challenge answered through <see cref="Http01Challenges"/>; finalize with a CSR for a fresh P-256 key;
/// download. An order may come back already `ready` or `valid` when the server reuses earlier authorizations,
/// so every step starts from the status the server reports, never from an assumed `pending`.
/// </summary>
public sealed class AcmeIssuer(AcmeClient client, Http01Challenges challenges) : ICertificateIssuer
{
    /// <summary>http-01 proves control of one host name; a wildcard needs dns-01 (RFC 8555 7.1.3), which Cutover does not answer.</summary>
    public void CheckNames(IReadOnlyList<string> names)
    {
        if (names.FirstOrDefault(n => n.StartsWith("*.", StringComparison.Ordinal)) is { } wildcard)
            throw new InputException($"{wildcard}: a wildcard certificate needs the ACME dns-01 challenge; Cutover answers http-01, so list each host name");
    }

    public async Task<IssuedCertificate> IssueAsync(IReadOnlyList<string> names, CancellationToken cancellationToken)
    {
        if (names.Count == 0) throw new ArgumentException("a certificate needs at least one name", nameof(names));
        CheckNames(names);
        var order = await client.NewOrderAsync(names, cancellationToken);
        if (order.Status == "pending")
        {
            foreach (var authorization in order.Authorizations) await AuthorizeAsync(authorization, cancellationToken);
            order = await client.PollAsync(ct => client.GetOrderAsync(order.Url, ct), o => o.Status != "pending",
                o => $"the order for {string.Join(", ", names)} is still {o.Status}", cancellationToken);
        }

        using var certificateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        if (order.Status == "ready") order = await client.FinalizeAsync(order, SigningRequest(names, certificateKey), cancellationToken);
        order = await client.PollAsync(ct => client.GetOrderAsync(order.Url, ct), o => o.Status is not ("processing" or "ready"),
            o => $"the order for {string.Join(", ", names)} is still {o.Status}", cancellationToken);
        if (order.Status != "valid" || order.Certificate is null)
            throw new AcmeException($"the ACME server did not issue the certificate for {string.Join(", ", names)}: order {order.Status}{(order.Error is null ? "" : ", " + order.Error)}");

        var chain = await client.DownloadCertificateAsync(order.Certificate, cancellationToken);
        // An order that was already valid was finalized with some other key: this one cannot use that certificate.
        using var leaf = CertificatePem.Leaf(chain);
        using var leafKey = leaf.GetECDsaPublicKey();
        if (leafKey is null || !leafKey.ExportSubjectPublicKeyInfo().AsSpan().SequenceEqual(certificateKey.ExportSubjectPublicKeyInfo()))
            throw new AcmeException($"the ACME server returned a certificate for {string.Join(", ", names)} that does not belong to the key Cutover sent (order {order.Url} was finalized before)");
        return new IssuedCertificate(chain, certificateKey.ExportPkcs8PrivateKeyPem());
    }

    private async Task AuthorizeAsync(Uri url, CancellationToken cancellationToken)
    {
        var (authorization, _) = await client.GetAuthorizationAsync(url, cancellationToken);
        if (authorization.Status == "valid") return;
        if (authorization.Status != "pending")
            throw new AcmeException($"the authorization for {authorization.Identifier} is {authorization.Status}");
        var challenge = authorization.Challenges.FirstOrDefault(c => c.Type == "http-01")
            ?? throw new AcmeException($"the ACME server offers no http-01 challenge for {authorization.Identifier} (offered: {string.Join(", ", authorization.Challenges.Select(c => c.Type))})");

        using (challenges.Serve(challenge.Token, client.Key.KeyAuthorization(challenge.Token)))
        {
            if (challenge.Status == "pending") await client.AnswerChallengeAsync(challenge.Url, cancellationToken);
            authorization = await client.PollAsync(ct => client.GetAuthorizationAsync(url, ct), a => a.Status != "pending",
                a => $"the authorization for {a.Identifier} is still {a.Status}", cancellationToken);
        }
        if (authorization.Status != "valid")
        {
            var why = authorization.Challenges.FirstOrDefault(c => c.Url == challenge.Url)?.Error;
            throw new AcmeException($"the ACME server could not validate {authorization.Identifier} by http-01 (is port 80 of that name reaching this proxy?): {authorization.Status}{(why is null ? "" : ", " + why)}");
        }
    }

    /// <summary>PKCS#10 with every name as a dNSName SAN; CN is the first name when it fits (64 characters).</summary>
    internal static byte[] SigningRequest(IReadOnlyList<string> names, ECDsa key)
    {
        var subject = names[0].Length <= 64 ? new X500DistinguishedName("CN=" + names[0]) : new X500DistinguishedName("");
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names) san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        return request.CreateSigningRequest();
    }
}
