using System.Net.Security;

namespace Cutover.Proxy;

/// <summary>
/// Where the TLS listener gets an app's certificate, asked once per handshake with the client's SNI (null when the
/// client sent none): PEM files (<see cref="CertificateFiles"/>) or the agent's ACME certificates
/// (<see cref="AcmeCertificateSource"/>), picked by <see cref="CertificateSources.For"/>. Null means "none for that name":
/// the listener then tries the next app that would serve the host, and fails the handshake if none has one.
/// </summary>
public interface ICertificateSource : IDisposable
{
    SslStreamCertificateContext? TryGetCertificate(string? serverName);
}

/// <summary>The one place a tls config becomes its certificate source.</summary>
public static class CertificateSources
{
    /// <param name="acme">The agent's ACME certificates; null where no agent runs (then acme cannot be served).</param>
    public static ICertificateSource For(string app, Config.TlsConfig tls, Acme.AcmeCertificates? acme, Microsoft.Extensions.Logging.ILogger logger)
    {
        if (tls.CertFile is { } cert && tls.KeyFile is { } key) return CertificateFiles.Open(cert, key, logger);
        if (tls.Acme is { } config)
            return new AcmeCertificateSource(acme?.ManagerFor(app, config) ?? throw new DeployException("proxy.tls.acme is served by the agent only"));
        throw new DeployException("proxy.tls has no certificate source: give cert and key, or acme");
    }
}

/// <summary>The SNI lookup of an app's ACME certificate manager. The manager belongs to the agent, so disposing this frees nothing.</summary>
public sealed class AcmeCertificateSource(Acme.CertificateManager manager) : ICertificateSource
{
    public SslStreamCertificateContext? TryGetCertificate(string? serverName) =>
        manager.TryGetCertificate(serverName, out var certificate) ? certificate.Context : null;

    public void Dispose()
    {
    }
}
