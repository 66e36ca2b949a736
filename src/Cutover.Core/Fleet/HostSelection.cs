using Cutover.Config;
using Cutover.Deploy;

namespace Cutover.Fleet;

/// <summary>
/// The hosts one command touches: all of the fleet, or those `--hosts`, `--roles` and `--primary` name (Kamal's
/// -h/-r/-p; given together they must all hold, so `--roles web --hosts web1,jobs1` is web1). Every fleet command
/// takes its hosts from here, so a new one (restart) narrows the same way by calling <see cref="Parse"/>.
/// </summary>
public sealed record HostSelection(IReadOnlyList<FleetHost> Hosts, bool Narrowed)
{
    public static HostSelection All(FleetConfig fleet) => new(fleet.Hosts, false);

    /// <param name="hosts">`--hosts a,b`: host names as the config writes them (or their addresses); null for no filter.</param>
    /// <param name="roles">`--roles web,worker`: hosts carrying any of them; null for no filter.</param>
    /// <param name="primary">`--primary`: the primary host only.</param>
    /// <exception cref="InputException">A name no host has, a role no host carries, or a filter that leaves no host.</exception>
    public static HostSelection Parse(FleetConfig fleet, string? hosts, string? roles, bool primary = false)
    {
        IEnumerable<FleetHost> selected = fleet.Hosts;
        if (hosts is not null)
        {
            var names = Split(hosts, "--hosts");
            var unknown = names.Where(n => Find(fleet, n) is null).ToList();
            if (unknown.Count > 0)
                throw new InputException($"--hosts: no host {string.Join(", ", unknown.Select(u => $"'{u}'"))} in the config; its hosts are {string.Join(", ", fleet.Hosts.Select(h => h.Name))}");
            var named = names.Select(n => Find(fleet, n)!).ToHashSet();
            selected = selected.Where(named.Contains);
        }
        if (roles is not null)
        {
            var wanted = Split(roles, "--roles");
            if (fleet.UnknownRoles(wanted) is { } unknown) throw new InputException($"--roles: {unknown}");
            selected = selected.Where(h => wanted.Any(h.Has));
        }
        if (primary) selected = selected.Where(h => h == fleet.Primary);
        var list = selected.ToList();
        if (list.Count == 0)
            throw new InputException($"{Filters(hosts, roles, primary)} together select no host; check `cutover status` for each host's roles");
        return new HostSelection(list, hosts is not null || roles is not null || primary);
    }

    /// <summary>The hosts of the fleet this selection leaves out.</summary>
    public IReadOnlyList<FleetHost> Others(FleetConfig fleet) => fleet.Hosts.Where(h => !Hosts.Contains(h)).ToList();

    private static FleetHost? Find(FleetConfig fleet, string name) =>
        fleet.Hosts.FirstOrDefault(h => h.Name == name) ?? fleet.Hosts.SingleOrDefaultOrNull(h => h.Address == name);

    private static List<string> Split(string text, string option)
    {
        var items = text.Split(',', StringSplitOptions.TrimEntries).ToList();
        if (items.Count == 0 || items.Any(i => i.Length == 0))
            throw new InputException($"{option}: '{text}' is not a comma-separated list of names, such as web1,web2");
        return items.Distinct(StringComparer.Ordinal).ToList();
    }

    private static string Filters(string? hosts, string? roles, bool primary) =>
        string.Join(" and ", new[] { hosts is null ? null : $"--hosts {hosts}", roles is null ? null : $"--roles {roles}", primary ? "--primary" : null }.OfType<string>());
}

internal static class EnumerableExtensions
{
    /// <summary>The one match, or null when there is none or more than one (an address two hosts share by port is ambiguous).</summary>
    public static T? SingleOrDefaultOrNull<T>(this IEnumerable<T> items, Func<T, bool> predicate) where T : class
    {
        var matches = items.Where(predicate).Take(2).ToList();
        return matches.Count == 1 ? matches[0] : null;
    }
}
