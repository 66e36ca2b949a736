namespace Cutover.Acme;

/// <summary>Issues one certificate for a set of DNS names. <see cref="AcmeIssuer"/> is the one Cutover ships.</summary>
public interface ICertificateIssuer
{
    /// <summary>Refuses (InputException) names this issuer can never obtain, before anything is ordered or changed.</summary>
    void CheckNames(IReadOnlyList<string> names);

    Task<IssuedCertificate> IssueAsync(IReadOnlyList<string> names, CancellationToken cancellationToken);
}

/// <summary>A fresh certificate: the PEM chain as the CA sent it (leaf first) and the PKCS#8 PEM of its private key.</summary>
public sealed record IssuedCertificate(string ChainPem, string PrivateKeyPem);
