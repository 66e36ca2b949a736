using System.Collections.Frozen;
using System.Collections.Immutable;

namespace Cutover.Proxy;

/// <summary>One (host, path prefix) an app claims on a listener. Host null: every host no other route names.</summary>
public sealed record Route(string? Host, string PathPrefix, ProxyServer App)
{
    public string HostText => Host ?? "every host (no proxy.hosts)";

    /// <summary>Segment-bounded: /api matches /api, /api/ and /api/x, never /apix.</summary>
    public bool MatchesPath(string path) =>
        PathPrefix == "/"
        || (path.StartsWith(PathPrefix, StringComparison.Ordinal) && (path.Length == PathPrefix.Length || path[PathPrefix.Length] == '/'));
}

/// <summary>
/// The routes of one listener, immutable: a change builds a new table and the listener swaps it in one step, so a
/// request sees the old table or the new one, never half of each. Lookup as kamal-proxy's service map: the exact
/// host, then "*." + the host without its first label, then the routes without hosts; within each, the longest
/// path prefix that matches on a segment boundary. A host whose routes match no path falls through to the next kind.
/// </summary>
public sealed class RouteTable
{
    public static readonly RouteTable Empty = new([]);

    private readonly FrozenDictionary<string, ImmutableArray<Route>> _byHost;
    private readonly ImmutableArray<Route> _catchAll;

    private RouteTable(ImmutableArray<Route> routes)
    {
        Routes = routes;
        // Longest prefix first, so the first match is the most specific.
        var ordered = routes.OrderByDescending(r => r.PathPrefix.Length).ToImmutableArray();
        _byHost = ordered.Where(r => r.Host is not null).GroupBy(r => r.Host!, StringComparer.Ordinal)
            .ToFrozenDictionary(g => g.Key, g => g.ToImmutableArray(), StringComparer.Ordinal);
        _catchAll = ordered.Where(r => r.Host is null).ToImmutableArray();
        _hasWildcards = routes.Any(r => r.Host?.StartsWith("*.", StringComparison.Ordinal) == true);
    }

    // Without wildcard routes a lookup never builds the "*." name: Match runs for every proxied request.
    private readonly bool _hasWildcards;

    public ImmutableArray<Route> Routes { get; }
    public bool IsEmpty => Routes.IsEmpty;

    /// <summary>The routes <paramref name="app"/> claims with <paramref name="hosts"/> (none: catch-all) and <paramref name="pathPrefix"/>.</summary>
    public static IEnumerable<Route> RoutesOf(ProxyServer app, IReadOnlyList<string> hosts, string pathPrefix) =>
        hosts.Count == 0 ? [new Route(null, pathPrefix, app)] : hosts.Select(h => new Route(h, pathPrefix, app));

    /// <summary>The route another app already holds for the same host and prefix as one of <paramref name="routes"/>.</summary>
    public (Route Existing, Route Claimed)? Conflict(IEnumerable<Route> routes)
    {
        foreach (var claimed in routes)
            foreach (var existing in Routes)
                if (existing.App != claimed.App && existing.Host == claimed.Host && existing.PathPrefix == claimed.PathPrefix)
                    return (existing, claimed);
        return null;
    }

    /// <summary>This table with <paramref name="app"/>'s routes replaced by <paramref name="routes"/>.</summary>
    public RouteTable With(ProxyServer app, IEnumerable<Route> routes) => new(Routes.RemoveAll(r => r.App == app).AddRange(routes));

    public RouteTable Without(ProxyServer app) => new(Routes.RemoveAll(r => r.App == app));

    public bool Contains(ProxyServer app) => Routes.Any(r => r.App == app);

    /// <summary>The route for a request, or null (the listener answers 404).</summary>
    public Route? Match(string host, string path)
    {
        if (_byHost.TryGetValue(host, out var exact) && First(exact, path) is { } byName) return byName;
        if (_hasWildcards && Wildcard(host) is { } wildcard && _byHost.TryGetValue(wildcard, out var wild) && First(wild, path) is { } byWildcard) return byWildcard;
        return First(_catchAll, path);
    }

    /// <summary>The routes that would serve <paramref name="host"/> on any path, most specific kind first: for SNI.</summary>
    public IEnumerable<Route> ForHost(string? host)
    {
        if (host is not null && _byHost.TryGetValue(host, out var exact)) foreach (var r in exact) yield return r;
        if (_hasWildcards && Wildcard(host) is { } wildcard && _byHost.TryGetValue(wildcard, out var wild)) foreach (var r in wild) yield return r;
        foreach (var r in _catchAll) yield return r;
    }

    /// <summary>"a.example.com" gives "*.example.com": one label only, as kamal-proxy.</summary>
    private static string? Wildcard(string? host)
    {
        var dot = host?.IndexOf('.') ?? -1;
        return dot > 0 && dot < host!.Length - 1 ? "*" + host[dot..] : null;
    }

    private static Route? First(ImmutableArray<Route> routes, string path)
    {
        foreach (var route in routes)
            if (route.MatchesPath(path)) return route;
        return null;
    }
}
