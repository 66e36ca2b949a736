using System.Text;
using Cutover.Config;
using YamlDotNet.RepresentationModel;

namespace Cutover.Fleet;

/// <summary>
/// The cutover.yml a fleet host runs with: the same file, without hosts, ssh and fleet (the host deploys to
/// itself), without migrations (they run once per deploy, sent to the first host's session, never per host), with the host's own root and
/// proxy listen address. Kept where <see cref="HostAppState"/> says (per app and root) on the host.
/// </summary>
public static class RemoteConfig
{
    public static string PathOn(HostConnection host, string app) => HostAppState.ConfigPath(host, app);

    public static string Render(CutoverConfig config, FleetHost host)
    {
        // Every -c file merged, as this deploy read them: the host gets the one effective config.
        var root = ConfigLayers.Load(config.Files.Count > 0 ? config.Files : [config.File]).Root;
        var stream = new YamlStream(new YamlDocument(root));
        foreach (var key in new[] { "hosts", "ssh", "fleet", "migrations" })
            root.Children.Remove(new YamlScalarNode(key));
        root.Children[new YamlScalarNode("root")] = new YamlScalarNode(host.Root);
        if (host.ProxyListen is { } listen && root.Children.TryGetValue(new YamlScalarNode("proxy"), out var proxy) && proxy is YamlMappingNode proxyMap)
            proxyMap.Children[new YamlScalarNode("listen")] = new YamlScalarNode(listen.ToString());
        var text = new StringBuilder();
        text.Append("# Written by `cutover deploy` from ").Append(string.Join(" + ", config.Files.Count > 0 ? config.Files : [config.File])).Append(" for ").Append(host.Name).Append("; it is replaced on every deploy.\n");
        using var writer = new StringWriter(text);
        stream.Save(writer, assignAnchors: false);
        return text.ToString().Replace("\n...\n", "\n");
    }

    /// <summary>Writes the file on the host atomically (temp name, then rename).</summary>
    public static async Task<string> WriteAsync(HostConnection host, CutoverConfig config, CancellationToken cancellationToken)
    {
        var path = PathOn(host, config.App);
        await host.WriteFileAsync(path, Encoding.UTF8.GetBytes(Render(config, host.Host)), cancellationToken);
        return path;
    }
}
