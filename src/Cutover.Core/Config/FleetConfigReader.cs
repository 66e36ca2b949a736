using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Cutover.Config;

/// <summary>Reads hosts, ssh and fleet from cutover.yml, with the same file:line:key errors as the rest.</summary>
internal static class FleetConfigReader
{
    public static FleetConfig? Read(YamlSection top, string rootText, Strategy strategy)
    {
        var hostNodes = top.Sequence("hosts");
        var sshSection = top.Section("ssh");
        var fleetSection = top.Section("fleet");
        if (hostNodes is null)
        {
            if (sshSection is not null) top.Error("ssh", "'ssh' only applies with 'hosts'; without hosts Cutover deploys on this machine");
            if (fleetSection is not null) top.Error("fleet", "'fleet' only applies with 'hosts'; without hosts Cutover deploys on this machine");
            return null;
        }
        if (hostNodes.Count == 0) top.Error("hosts", "'hosts' is empty; list at least one host, or remove the key to deploy on this machine");
        if (rootText.Length > 0 && !rootText.StartsWith('/'))
            top.Error("root", $"with 'hosts', root is a path on each host and must be absolute, not '{rootText}'");

        var ssh = ReadSsh(sshSection, top.File);
        var hosts = new List<FleetHost>();
        var primaries = new List<(YamlNode Node, FleetHost Host)>();
        foreach (var (node, index) in hostNodes.Select((n, i) => (n, i)))
        {
            var host = node switch
            {
                YamlScalarNode scalar => ParseScalar(top, scalar, ssh, rootText),
                YamlMappingNode mapping => ParseMapping(new YamlSection(mapping, top.File, $"hosts[{index}]", top.Errors, top.Sources), ssh, rootText, strategy),
                _ => null,
            };
            if (node is not (YamlScalarNode or YamlMappingNode))
                top.Error(node, "hosts", "each host is either a string such as deploy@web1:22 or a mapping with 'host'");
            if (host is null) continue;
            if (hosts.FirstOrDefault(h => h.Address == host.Address && h.Port == host.Port) is { } twin)
                top.Error(node, "hosts", $"'{host.Name}' is listed twice (also as '{twin.Name}')");
            else
            {
                hosts.Add(host);
                if (host.Primary) primaries.Add((node, host));
            }
        }
        // One primary at most: two would make "where migrations run" a guess.
        if (primaries.Count > 1)
            top.Error(primaries[1].Node, "hosts", $"more than one host is primary: {string.Join(", ", primaries.Select(p => $"{p.Host.Name} (line {p.Node.Start.Line})"))}; " +
                                                   "migrations run on one host, mark only it `primary: true`");
        return new FleetConfig { Hosts = hosts, Ssh = ssh, Options = ReadOptions(fleetSection) };
    }

    private static FleetHost? ParseScalar(YamlSection top, YamlScalarNode node, SshSettings ssh, string root)
    {
        var text = node.Value ?? "";
        if (!TrySplit(text, ssh, out var user, out var address, out var port, out var error))
        {
            top.Error(node, "hosts", error!);
            return null;
        }
        return new FleetHost(text, address, port, user, root);
    }

    private static FleetHost? ParseMapping(YamlSection section, SshSettings ssh, string root, Strategy strategy)
    {
        var address = section.RequiredString("host");
        var port = section.Int("port", ssh.Port, min: 1, max: 65535);
        var user = section.String("user", ssh.User)!;
        var hostRoot = section.String("root", root)!;
        if (section.Has("root") && !hostRoot.StartsWith('/'))
            section.Error("root", $"a host's root is a path on that host and must be absolute, not '{hostRoot}'");
        System.Net.IPEndPoint? listen = null;
        if (section.String("proxy_listen") is { } listenText)
        {
            // It overrides proxy.listen, which only the strategies that run instances have.
            if (!strategy.Uses("hosts[].proxy_listen")) section.KeyError("proxy_listen", StrategyKeys.NotUsed(strategy, "hosts[].proxy_listen"));
            else if (!ConfigLoader.TryParseListen(listenText, out listen))
                section.Error("proxy_listen", $"'{listenText}' is not an address and port such as 0.0.0.0:3000 or 127.0.0.1:8080");
        }
        var roles = ReadRoles(section);
        var primary = section.Choice("primary", false, ("true", true), ("false", false));
        section.RejectUnknownKeys();
        if (address.Length == 0) return null;
        var name = section.Has("port") ? $"{address}:{port}" : address;
        return new FleetHost(name, address, port, user, hostRoot, listen) { Roles = roles, Primary = primary };
    }

    /// <summary>A host's roles: names such as web or worker; absent means [web], as Kamal's default role.</summary>
    private static IReadOnlyList<string> ReadRoles(YamlSection section)
    {
        if (!section.Has("roles")) return [FleetHost.WebRole];
        var roles = new List<string>();
        var nodes = section.StringList("roles");
        if (nodes.Count == 0) section.Error("roles", "a host needs at least one role; remove 'roles' for the default [web]");
        foreach (var node in nodes)
        {
            var role = node.Value!;
            if (!IsRoleName(role))
                section.Error(node, "roles", $"'{role}' is not a role name (letters, digits, '-' and '_', starting with a letter)");
            else if (roles.Contains(role, StringComparer.Ordinal))
                section.Error(node, "roles", $"'{role}' is listed twice");
            else
                roles.Add(role);
        }
        return roles;
    }

    internal static bool IsRoleName(string text) =>
        text.Length > 0 && char.IsAsciiLetter(text[0]) && text.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>[user@]host[:port], with [v6]:port for IPv6 addresses.</summary>
    internal static bool TrySplit(string text, SshSettings ssh, out string user, out string address, out int port, out string? error)
    {
        user = ssh.User;
        port = ssh.Port;
        address = "";
        error = null;
        var rest = text;
        var at = rest.LastIndexOf('@');
        if (at >= 0)
        {
            user = rest[..at];
            rest = rest[(at + 1)..];
        }
        string? portText = null;
        if (rest.StartsWith('['))
        {
            var close = rest.IndexOf(']');
            if (close < 0) { error = $"'{text}': missing ']'"; return false; }
            address = rest[1..close];
            if (close + 1 < rest.Length)
            {
                if (rest[close + 1] != ':') { error = $"'{text}' is not [address]:port"; return false; }
                portText = rest[(close + 2)..];
            }
        }
        else if (rest.Count(c => c == ':') == 1)
        {
            address = rest[..rest.IndexOf(':')];
            portText = rest[(rest.IndexOf(':') + 1)..];
        }
        else
        {
            address = rest;
        }
        if (user.Length == 0 || address.Length == 0 || address.Any(char.IsWhiteSpace))
        {
            error = $"'{text}' is not a host such as web1.example.com, deploy@web2.example.com:2222 or [::1]:22";
            return false;
        }
        if (portText is not null && (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535))
        {
            error = $"'{text}': '{portText}' is not a port from 1 to 65535";
            return false;
        }
        return true;
    }

    private static SshSettings ReadSsh(YamlSection? section, string file)
    {
        var defaults = new SshSettings();
        if (section is null) return defaults;
        var key = section.String("key");
        var settings = new SshSettings
        {
            User = section.String("user", defaults.User)!,
            Key = key is null ? null : LocalPath(key, file),
            KnownHosts = section.String("known_hosts") is { } known ? LocalPath(known, file) : defaults.KnownHosts,
            Port = section.Int("port", 22, min: 1, max: 65535),
            ConnectTimeout = section.Duration("connect_timeout", defaults.ConnectTimeout, min: TimeSpan.FromMilliseconds(100)),
        };
        section.RejectUnknownKeys();
        return settings;
    }

    private static FleetOptions ReadOptions(YamlSection? section)
    {
        if (section is null) return new FleetOptions();
        var batch = BatchSize.OfHosts(1);
        if (section.String("batch") is { } batchText)
        {
            if (batchText.EndsWith('%') && double.TryParse(batchText[..^1], NumberStyles.Float, CultureInfo.InvariantCulture, out var percent) && percent is > 0 and <= 100)
                batch = BatchSize.OfPercent(percent);
            else if (int.TryParse(batchText, NumberStyles.None, CultureInfo.InvariantCulture, out var hosts) && hosts >= 1)
                batch = BatchSize.OfHosts(hosts);
            else
                section.Error("batch", $"'{batchText}' is neither a number of hosts (1 or more) nor a percentage such as 25%");
        }
        var options = new FleetOptions
        {
            Parallel = section.Int("parallel", 10, min: 1, max: 1000),
            Batch = batch,
            Wait = section.Duration("wait", TimeSpan.Zero),
        };
        section.RejectUnknownKeys();
        return options;
    }

    /// <summary>A path on this machine: ~/ is the local home, relative paths are relative to the config file.</summary>
    private static string LocalPath(string text, string file)
    {
        if (text.StartsWith("~/", StringComparison.Ordinal))
            text = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), text[2..]);
        return Path.GetFullPath(text, Path.GetDirectoryName(file) ?? Directory.GetCurrentDirectory());
    }
}
