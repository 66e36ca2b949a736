using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Cutover.Tests.Support;

/// <summary>Self-signed P-256 certificates written as the PEM files proxy.tls cert/key name.</summary>
public static class PemCertificate
{
    /// <summary>
    /// A self-signed certificate for <paramref name="names"/> (valid from 5 minutes ago for a day), written as PEM to
    /// <paramref name="certFile"/> and <paramref name="keyFile"/>, each replaced by rename so a watcher never reads half
    /// a file; returns its thumbprint.
    /// </summary>
    public static string Write(string certFile, string keyFile, string subject, params string[] names)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={subject}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names) san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        File.WriteAllText(keyFile + ".tmp", key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(certFile + ".tmp", certificate.ExportCertificatePem());
        File.Move(keyFile + ".tmp", keyFile, overwrite: true);
        File.Move(certFile + ".tmp", certFile, overwrite: true);
        return certificate.Thumbprint;
    }
}
