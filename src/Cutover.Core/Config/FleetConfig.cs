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
}

/// <summary>
/// One server. <see cref="Name"/> is how the config wrote it and how every message names it; root and
/// proxy_listen are per-host overrides of the top-level root and proxy.listen.
/// </summary>
public sealed record FleetHost(string Name, string Address, int Port, string User, string Root, IPEndPoint? ProxyListen = null);

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
