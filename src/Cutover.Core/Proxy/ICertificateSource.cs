using System.Net.Security;

namespace Cutover.Proxy;

/// <summary>
/// Where the TLS listener gets an app's certificate, asked once per handshake with the client's SNI (null when the
/// client sent none). Files today (<see cref="CertificateFiles"/>); an ACME certificate manager plugs in here by
/// implementing this and being returned from <see cref="CertificateSources.For"/>. Null means "none for that name":
/// the listener then tries the next app that would serve the host, and fails the handshake if none has one.
/// </summary>
public interface ICertificateSource : IDisposable
{
    SslStreamCertificateContext? TryGetCertificate(string? serverName);
}

/// <summary>The one place a tls config becomes its certificate source.</summary>
public static class CertificateSources
{
    public static ICertificateSource For(Config.TlsConfig tls, Microsoft.Extensions.Logging.ILogger logger)
    {
        if (tls.CertFile is { } cert && tls.KeyFile is { } key) return CertificateFiles.Open(cert, key, logger);
        throw new DeployException("proxy.tls has no certificate source: give cert and key");
    }
}
