using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Cutover.Acme;
using Cutover.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace Cutover.Tests.Acme;

/// <summary>
/// The manager without a CA: certificates already in the store (made here, as a CA would), SNI selection and the
/// names it refuses. Nothing here may order: the issuers point at a port nothing listens on, or refuse outright.
/// </summary>
public sealed class CertificateManagerTests
{
    private static readonly AcmeOptions Unreachable = new() { Directory = new Uri($"https://127.0.0.1:{HealthServer.FreePort()}/dir") };

    [Fact]
    public async Task Sni_picks_the_exact_name_then_a_one_label_wildcard()
    {
        using var home = new TempDir();
        var store = new CertificateStore(home.Combine("certs"));
        IReadOnlyList<string> names = ["*.apps.cutover.test", "cutover.test"];
        store.Save(names, SelfSigned(names, DateTimeOffset.UtcNow.AddDays(80)));
        // A wildcard cannot come from http-01, so the planted certificate stands for one from another issuer.
        var manager = new CertificateManager(store, new RefusingIssuer(), time: new FakeTimeProvider(DateTimeOffset.UtcNow));

        await manager.EnsureAsync(["Cutover.test", "*.apps.cutover.test."], CancellationToken.None);

        Assert.True(manager.TryGetCertificate("cutover.test", out var exact));
        Assert.Equal(names, exact.Names);
        Assert.True(manager.TryGetCertificate("A.Apps.Cutover.Test.", out var wildcard));
        Assert.Same(exact, wildcard);
        Assert.False(manager.TryGetCertificate("b.a.apps.cutover.test", out _)); // a wildcard covers one label
        Assert.False(manager.TryGetCertificate("apps.cutover.test", out _));
        Assert.False(manager.TryGetCertificate("other.test", out _));
        Assert.False(manager.TryGetCertificate(null, out _));
        Assert.Null(manager.Status.LastError);
    }

    [Theory]
    [InlineData("-bad.cutover.test")]
    [InlineData("under_score.cutover.test")]
    [InlineData("localhost")]
    [InlineData("a.*.cutover.test")]
    [InlineData("")]
    [InlineData("*.cutover.test")]
    public async Task A_name_no_certificate_can_carry_is_refused_before_any_order(string name)
    {
        using var home = new TempDir();
        var store = new CertificateStore(home.Combine("certs"));
        using var client = new AcmeClient(Unreachable, AccountKey.Create());
        var manager = new CertificateManager(store, new AcmeIssuer(client, new Http01Challenges()));

        var error = await Assert.ThrowsAsync<InputException>(() => manager.EnsureAsync(["ok.cutover.test", name], CancellationToken.None));

        Assert.Contains(name.StartsWith('*') ? "needs the ACME dns-01 challenge" : "is not a DNS name", error.Message);
        Assert.False(Directory.Exists(store.Directory)); // nothing written
    }

    /// <summary>An issuer for certificates that are already in the store: any order is a test failure.</summary>
    private sealed class RefusingIssuer : ICertificateIssuer
    {
        public void CheckNames(IReadOnlyList<string> names)
        {
        }

        public Task<IssuedCertificate> IssueAsync(IReadOnlyList<string> names, CancellationToken cancellationToken) =>
            throw new InvalidOperationException($"the manager ordered a certificate for {string.Join(", ", names)}");
    }

    /// <summary>A certificate and key in the shape an ACME server's download and our CSR key have.</summary>
    internal static IssuedCertificate SelfSigned(IReadOnlyList<string> names, DateTimeOffset notAfter)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=" + names[0], key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names) san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-10), notAfter);
        return new IssuedCertificate(certificate.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }
}
