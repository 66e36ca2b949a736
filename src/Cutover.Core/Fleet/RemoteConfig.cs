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
        foreach (var key in new[] { "hosts", "ssh", "fleet", "migrations", "env", "env_file" })
            root.Children.Remove(new YamlScalarNode(key));
        // The environment as resolved here: literal values (committed in cutover.yml anyway) stay in the host's config,
        // with $ written $$ so the host does not interpolate them again; secret ones go in a file of their own
        // (HandedEnvFile), never in this one in plaintext.
        var (literal, secret) = Split(config.Environment);
        if (literal.Count > 0)
        {
            var env = new YamlMappingNode();
            foreach (var (name, value) in literal) env.Add(name, new YamlScalarNode(value.Replace("$", "$$")) { Style = YamlDotNet.Core.ScalarStyle.DoubleQuoted });
            root.Children[new YamlScalarNode("env")] = env;
        }
        if (secret.Count > 0) root.Children[new YamlScalarNode("env_file")] = new YamlScalarNode(HandedEnvFile);
        LeaveOutSingletonsPlacedElsewhere(config, host, root);
        root.Children[new YamlScalarNode("root")] = new YamlScalarNode(host.Root);
        if (host.ProxyListen is { } listen && root.Children.TryGetValue(new YamlScalarNode("proxy"), out var proxy) && proxy is YamlMappingNode proxyMap)
            proxyMap.Children[new YamlScalarNode("listen")] = new YamlScalarNode(listen.ToString());
        var text = new StringBuilder();
        text.Append("# Written by `cutover deploy` from ").Append(string.Join(" + ", config.Files.Count > 0 ? config.Files : [config.File])).Append(" for ").Append(host.Name).Append("; it is replaced on every deploy.\n");
        using var writer = new StringWriter(text);
        stream.Save(writer, assignAnchors: false);
        return text.ToString().Replace("\n...\n", "\n");
    }

    /// <summary>
    /// A singleton type runs on one host of the fleet (<see cref="FleetConfig.SingletonHost"/>); every other host gets a
    /// config without it. The host's config is what all its commands read (the activation, an agent's restore after a
    /// restart, restart, scale, rollback), so none of them can start it there, and a deploy that moves it (hosts or
    /// roles edited) removes the type on the old host like any removed type. FleetDeployer switches the hosts that run
    /// a singleton last, so the old host has stopped it before the new one starts it.
    /// </summary>
    private static void LeaveOutSingletonsPlacedElsewhere(CutoverConfig config, FleetHost host, YamlMappingNode root)
    {
        if (config.Fleet is not { } fleet || config.Settings is not InstanceSettings settings) return;
        var key = new YamlScalarNode("processes");
        if (!root.Children.TryGetValue(key, out var node) || node is not YamlMappingNode processes) return;
        foreach (var type in settings.Processes.Where(p => p.Singleton && !fleet.Runs(host, p.Name, settings)))
            processes.Children.Remove(new YamlScalarNode(type.Name));
        if (processes.Children.Count == 0) root.Children.Remove(key);
    }

    /// <summary>The hosts that run at least one singleton type: switched after every other host.</summary>
    public static bool RunsASingleton(CutoverConfig config, FleetHost host) =>
        config.Fleet is { } fleet && config.Settings is InstanceSettings settings
        && settings.Processes.Any(p => p.Singleton && fleet.Runs(host, p.Name, settings));

    /// <summary>
    /// The deploy's resolved environment, beside the host's cutover.yml (which names it as env_file): written 0600 over
    /// the SSH channel (cat's stdin, never a command line) before the session starts; the session reads it with the
    /// config and deletes it (<see cref="TakeHandedEnvFile"/>), so on the host the values then live only in the
    /// release's own .cutover/env/&lt;id&gt;.env, as on a single machine.
    /// </summary>
    public const string HandedEnvFile = "deploy.env";

    private static (Dictionary<string, string> Literal, Dictionary<string, string> Secret) Split(AppEnvironment environment)
    {
        var secrets = environment.Secrets.ToHashSet(StringComparer.Ordinal);
        var literal = new Dictionary<string, string>(StringComparer.Ordinal);
        var secret = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in environment.Variables) (secrets.Contains(value) ? secret : literal)[name] = value;
        return (literal, secret);
    }

    /// <summary>Host side: deletes the handed-over env file once the config (and so its values) has been read.</summary>
    public static void TakeHandedEnvFile(CutoverConfig config)
    {
        if (config.Environment.EnvFile is { } read && Path.GetFileName(read) == HandedEnvFile && Path.GetDirectoryName(read) == Path.GetDirectoryName(config.File))
            File.Delete(read);
    }

    /// <summary>Writes the file on the host atomically (temp name, then rename), and the environment file first when there is one.</summary>
    public static async Task<string> WriteAsync(HostConnection host, CutoverConfig config, CancellationToken cancellationToken)
    {
        var path = PathOn(host, config.App);
        if (Split(config.Environment).Secret is { Count: > 0 } secret)
            await host.WriteFileAsync(HostAppState.Dir(host, config.App) + "/" + HandedEnvFile,
                Encoding.UTF8.GetBytes(Releases.ReleaseEnvironmentFile.Format(secret)), cancellationToken, ownerOnly: true);
        await host.WriteFileAsync(path, Encoding.UTF8.GetBytes(Render(config, host.Host)), cancellationToken);
        return path;
    }
}
