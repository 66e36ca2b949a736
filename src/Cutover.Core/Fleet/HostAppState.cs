using System.Security.Cryptography;
using System.Text;

namespace Cutover.Fleet;

/// <summary>
/// Where a host keeps what the last deploy of one root left there: its cutover.yml and a link to the build it ran.
/// Keyed by app and root (`~/.cutover/apps/&lt;app&gt;@&lt;12 hex of sha256(root)&gt;/`), so two roots of one app on one
/// host (staging and production under one user) never overwrite each other. Hosts deployed before this layout have
/// `~/.cutover/apps/&lt;app&gt;/`; read-only commands still use it when its config names the same root, and the next
/// deploy writes the new place.
/// </summary>
public static class HostAppState
{
    public static string Dir(HostConnection host, string app) => $"{host.Home}/.cutover/apps/{app}@{RootKey(host.Host.Root)}";

    public static string ConfigPath(HostConnection host, string app) => Dir(host, app) + "/cutover.yml";

    public static string BinaryLink(HostConnection host, string app) => Dir(host, app) + "/cutover";

    /// <summary>The layout before roots were part of the key: one directory per app.</summary>
    public static string LegacyDir(HostConnection host, string app) => $"{host.Home}/.cutover/apps/{app}";

    public static string RootKey(string root) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(root)))[..12];
}
