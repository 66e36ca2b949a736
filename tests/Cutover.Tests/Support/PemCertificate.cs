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

/// <summary>A leaf signed by an intermediate CA signed by a root CA, the leaf's PEM file holding leaf then intermediate.</summary>
public static class PemChain
{
    /// <summary>Writes leaf + intermediate to <paramref name="certFile"/> and the leaf's key to <paramref name="keyFile"/>; the two certificates' PEM.</summary>
    public static (string LeafPem, string IntermediatePem) Write(string certFile, string keyFile, params string[] names)
    {
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var intermediateKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var leafKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5);
        var notAfter = DateTimeOffset.UtcNow.AddDays(1);

        var rootRequest = new CertificateRequest("CN=Cutover Test Root", rootKey, HashAlgorithmName.SHA256);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var root = rootRequest.CreateSelfSigned(notBefore, notAfter.AddDays(1));

        var intermediateRequest = new CertificateRequest("CN=Cutover Test Intermediate", intermediateKey, HashAlgorithmName.SHA256);
        intermediateRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        intermediateRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        using var intermediatePublic = intermediateRequest.Create(root, notBefore, notAfter, [1, 2, 3, 4]);
        using var intermediate = intermediatePublic.CopyWithPrivateKey(intermediateKey);

        var leafRequest = new CertificateRequest($"CN={names[0]}", leafKey, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names) san.AddDnsName(name);
        leafRequest.CertificateExtensions.Add(san.Build());
        using var leaf = leafRequest.Create(intermediate, notBefore, notAfter, [5, 6, 7, 8]);

        var leafPem = leaf.ExportCertificatePem();
        var intermediatePem = intermediatePublic.ExportCertificatePem();
        File.WriteAllText(keyFile, leafKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(certFile, leafPem + "\n" + intermediatePem + "\n");
        return (leafPem, intermediatePem);
    }
}
