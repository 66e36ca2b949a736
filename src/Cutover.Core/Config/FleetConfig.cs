using System.Net;

namespace Cutover.Config;

/// <summary>
/// The fleet part of cutover.yml: the hosts one config deploys to, how to reach them over SSH, and how many are
/// prepared and switched at once. Null on <see cref="CutoverConfig.Fleet"/> means the local machine.
/// </summary>
public sealed record FleetConfig
{
    public required IReadOnlyList<FleetHost> Hosts { get; init; }
    public SshSettings Ssh { get; init; } = new();
    public FleetOptions Options { get; init; } = new();

    /// <summary>Where migrations run, once per deploy: the host marked `primary: true`, else the first.</summary>
    public FleetHost Primary => Hosts.FirstOrDefault(h => h.Primary) ?? Hosts[0];

    /// <summary>
    /// The one host a singleton process type runs on across the fleet: the primary when it carries one of the type's
    /// roles (null roles: every host), else the first host in config order that does; null when none does. Every other
    /// host runs none of it (RemoteConfig leaves the type out of their config), so "never two at once" holds fleet-wide.
    /// </summary>
    public FleetHost? SingletonHost(IReadOnlyList<string>? typeRoles)
    {
        bool Carries(FleetHost host) => typeRoles is null || typeRoles.Any(host.Has);
        return Carries(Primary) ? Primary : Hosts.FirstOrDefault(Carries);
    }

    /// <summary>Whether a process type (web: its role) runs on <paramref name="host"/>: by its roles, and a singleton only on its <see cref="SingletonHost"/>.</summary>
    public bool Runs(FleetHost host, string type, InstanceSettings settings) =>
        type == ProcessConfigReader.Web ? host.Has(FleetHost.WebRole)
        : settings.Processes.FirstOrDefault(p => p.Name == type) is { } process
          && (process.Singleton ? Equals(SingletonHost(process.Roles), host) : process.Roles is null || process.Roles.Any(host.Has));

    /// <summary>Every role some host carries, in the order the config first names them.</summary>
    public IReadOnlyList<string> Roles => Hosts.SelectMany(h => h.Roles).Distinct(StringComparer.Ordinal).ToList();

    /// <summary>
    /// Why <paramref name="roles"/> cannot be used (--roles, or a process type's roles:): the ones no host carries,
    /// named with the roles there are; null when every one is carried by some host.
    /// </summary>
    public string? UnknownRoles(IEnumerable<string> roles)
    {
        var unknown = roles.Where(r => !Roles.Contains(r, StringComparer.Ordinal)).ToList();
        return unknown.Count == 0 ? null : $"no host has the role {string.Join(", ", unknown.Select(u => $"'{u}'"))}; the roles of this fleet are {string.Join(", ", Roles)}";
    }
}

/// <summary>
/// One server. <see cref="Name"/> is how the config wrote it and how every message names it; root and
/// proxy_listen are per-host overrides of the top-level root and proxy.listen.
/// </summary>
public sealed record FleetHost(string Name, string Address, int Port, string User, string Root, IPEndPoint? ProxyListen = null)
{
    /// <summary>The default role of a host that names none, as Kamal's (a plain list of servers is role web).</summary>
    public const string WebRole = "web";

    /// <summary>What runs here: the web process and its proxy with `web`, each process type by its `roles:`.</summary>
    public IReadOnlyList<string> Roles { get; init; } = [WebRole];

    /// <summary>`primary: true`: migrations run here (<see cref="FleetConfig.Primary"/>).</summary>
    public bool Primary { get; init; }

    public bool Has(string role) => Roles.Contains(role, StringComparer.Ordinal);

    // Records compare lists by reference; hosts are equal when they are the same server with the same roles.
    public bool Equals(FleetHost? other) =>
        other is not null && (Name, Address, Port, User, Root, ProxyListen, Primary) == (other.Name, other.Address, other.Port, other.User, other.Root, other.ProxyListen, other.Primary)
        && Roles.SequenceEqual(other.Roles, StringComparer.Ordinal);

    public override int GetHashCode() => HashCode.Combine(Name, Address, Port, Root);
}

public sealed record SshSettings
{
    public string User { get; init; } = Environment.UserName;
    /// <summary>The private key file; null picks ~/.ssh/id_ed25519, id_ecdsa or id_rsa, the first that exists.</summary>
    public string? Key { get; init; }
    public string KnownHosts { get; init; } = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".ssh", "known_hosts");
    public int Port { get; init; } = 22;
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

public sealed record FleetOptions
{
    /// <summary>Hosts connected, installed and prepared at once.</summary>
    public int Parallel { get; init; } = 10;
    public BatchSize Batch { get; init; } = BatchSize.OfHosts(1);
    /// <summary>Pause between switch batches.</summary>
    public TimeSpan Wait { get; init; } = TimeSpan.Zero;
}

/// <summary>fleet.batch: a number of hosts, or a percentage of the fleet (Kamal's boot.limit), at least one host.</summary>
public sealed record BatchSize(int? Hosts, double? Percent)
{
    public static BatchSize OfHosts(int hosts) => new(hosts, null);
    public static BatchSize OfPercent(double percent) => new(null, percent);

    public int For(int fleetSize) =>
        Math.Clamp(Hosts ?? (int)Math.Ceiling(fleetSize * Percent!.Value / 100.0), 1, Math.Max(1, fleetSize));

    public override string ToString() => Hosts is { } n ? n.ToString(System.Globalization.CultureInfo.InvariantCulture) : $"{Percent}%";
}
