using System.Security.Cryptography.X509Certificates;

namespace Cutover.Tests.Support;

/// <summary>
/// A chain policy that trusts exactly one root (pebble's, or a test-made CA) and nothing from the system store, so a
/// handshake passes only when the server sends a chain that leads to it.
/// </summary>
public static class TrustOnly
{
    public static X509ChainPolicy Root(X509Certificate2 root) => new()
    {
        TrustMode = X509ChainTrustMode.CustomRootTrust,
        CustomTrustStore = { root },
        RevocationMode = X509RevocationMode.NoCheck,
    };
}
