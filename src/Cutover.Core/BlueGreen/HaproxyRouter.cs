using System.Diagnostics;
using System.Globalization;
using System.Net;
using Cutover.Config;

namespace Cutover.BlueGreen;

/// <summary>
/// `router: haproxy`: HAProxy's backend follows the live set through the runtime API, never a reload, so the
/// connections HAProxy keeps alive to clients survive every switch. Cutover owns every server of the backend and
/// names them cutover-&lt;ip&gt;-&lt;port&gt;. A switch: the new set is added (HAProxy adds a server in maintenance),
/// then in one CLI session every new server is set ready and only after that every other server drain, so the
/// backend is never empty (for an instant both sets take requests). Each drained server is waited on until its
/// current sessions are 0 (or drain_timeout, then its sessions are shut down), then set maint and deleted: `del
/// server` is refused for a server in use, and a deleted server cannot be put back, so delete is always last.
/// </summary>
public sealed class HaproxyRouter(HaproxyRouterConfig config)
{
    public const string ServerPrefix = "cutover-";

    /// <summary>Balance algorithms HAProxy 2.6 accepts `add server` for (the others are static: static-rr, map-based hashes).</summary>
    private static readonly string[] DynamicAlgorithms = ["roundrobin", "leastconn", "first", "random"];

    private readonly HaproxyRuntimeApi _api = new(config.Socket);

    /// <summary>The HAProxy router of an app's settings (blue-green's or rolling's `router: haproxy`), or null.</summary>
    public static HaproxyRouter? For(StrategySettings settings) => settings switch
    {
        BlueGreenSettings { BlueGreen: { Router: "haproxy", Haproxy: { } haproxy } } => new HaproxyRouter(haproxy),
        RollingSettings { Rolling.Haproxy: { } haproxy } => new HaproxyRouter(haproxy),
        _ => null,
    };

    public static string ServerName(IPEndPoint endpoint) =>
        ServerPrefix + endpoint.Address.ToString().Replace(':', '_') + "-" + endpoint.Port.ToString(CultureInfo.InvariantCulture);

    private string Server(string name) => $"{config.Backend}/{name}";

    /// <summary>Null when HAProxy can be driven as configured; otherwise the one-line reason (nothing was changed).</summary>
    public async Task<string?> CheckAsync(CancellationToken cancellationToken)
    {
        string level;
        try
        {
            level = (await _api.SendAsync("show cli level", cancellationToken)).Trim();
        }
        catch (System.Net.Sockets.SocketException e)
        {
            return $"haproxy.socket {config.Socket}: {e.Message} (is HAProxy running with `stats socket {config.Socket} level admin`?)";
        }
        if (level != "admin")
            return $"haproxy.socket {config.Socket} is at level {(level.Length == 0 ? "unknown" : level)}, not admin: add `level admin` to its `stats socket` line in haproxy.cfg";
        var rows = await _api.ShowStatAsync(config.Backend, cancellationToken);
        var backend = rows.FirstOrDefault(r => r.GetValueOrDefault("svname") == "BACKEND");
        if (backend is null)
            return $"haproxy has no backend '{config.Backend}' (haproxy.backend): declare `backend {config.Backend}` with `balance roundrobin` in haproxy.cfg";
        var algorithm = backend.GetValueOrDefault("algo") ?? "";
        if (!DynamicAlgorithms.Contains(algorithm))
            return $"haproxy backend '{config.Backend}' balances with {algorithm}, to which servers cannot be added at run time: use `balance roundrobin` (or leastconn, first, random)";
        var foreign = rows.Where(r => r.GetValueOrDefault("svname") is { } name && name != "BACKEND" && !name.StartsWith(ServerPrefix)).Select(r => r["svname"]).ToArray();
        if (foreign.Length > 0)
            return $"haproxy backend '{config.Backend}' has servers Cutover did not add ({string.Join(", ", foreign)}); Cutover manages every server of it: remove their `server` lines from haproxy.cfg";
        return null;
    }

    /// <summary>
    /// HAProxy routes to <paramref name="endpoints"/> only: added and set ready first, then every other server drained,
    /// set maint and deleted. Null, or why not; a failure before the ready step leaves the old servers serving.
    /// </summary>
    public async Task<string?> RouteAsync(IReadOnlyList<IPEndPoint> endpoints, TimeSpan drainTimeout, CancellationToken cancellationToken)
    {
        try
        {
            return await RouteOrThrowAsync(endpoints, drainTimeout, cancellationToken);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
        {
            return Unreachable(e);
        }
    }

    /// <summary>HAProxy stopped answering mid-change (it died or was restarted, which forgets every added server).</summary>
    private string Unreachable(Exception e) => $"haproxy.socket {config.Socket} stopped answering: {e.Message}";

    private async Task<string?> RouteOrThrowAsync(IReadOnlyList<IPEndPoint> endpoints, TimeSpan drainTimeout, CancellationToken cancellationToken)
    {
        var wanted = endpoints.Select(ServerName).ToArray();
        var present = (await ServersAsync(cancellationToken)).Select(r => r["svname"]).ToHashSet();
        foreach (var endpoint in endpoints)
            if (!present.Contains(ServerName(endpoint)) && await AddInMaintenanceAsync(endpoint, cancellationToken) is { } refused) return refused;
        var old = present.Where(n => !wanted.Contains(n)).ToArray();
        // Ready before drain, in one session: the backend always has a server taking new requests.
        var answer = await _api.SendAsync([.. wanted.Select(n => $"set server {Server(n)} state ready"), .. old.Select(n => $"set server {Server(n)} state drain")], cancellationToken);
        if (answer.Trim().Length > 0) return $"haproxy refused a state change: {answer.Trim()}";
        // Traffic has moved: the drained servers go to the end even when the deploy is cancelled (a drain is never cut
        // short, and a server left in drain would stay in the backend).
        await RemoveAsync(old, drainTimeout, CancellationToken.None);
        return null;
    }

    /// <summary>
    /// Rolling: one new instance into the backend, ready at once (added, then `state ready`: HAProxy adds a server in
    /// maintenance). Null, or why not.
    /// </summary>
    public async Task<string?> AddAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        var name = ServerName(endpoint);
        try
        {
            if ((await ServersAsync(cancellationToken)).All(r => r["svname"] != name) && await AddInMaintenanceAsync(endpoint, cancellationToken) is { } refused)
                return refused;
            var answer = await _api.SendAsync($"set server {Server(name)} state ready", cancellationToken);
            return answer.Trim().Length > 0 ? $"haproxy refused `set server {Server(name)} state ready`: {answer.Trim()}" : null;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
        {
            return Unreachable(e);
        }
    }

    /// <summary>Rolling: one instance out of the backend before it stops: drained (no new requests), then deleted.</summary>
    public async Task RemoveAsync(IPEndPoint endpoint, TimeSpan drainTimeout, CancellationToken cancellationToken)
    {
        var name = ServerName(endpoint);
        try
        {
            if ((await ServersAsync(cancellationToken)).All(r => r["svname"] != name)) return;
            await _api.SendAsync($"set server {Server(name)} state drain", cancellationToken);
            await RemoveAsync([name], drainTimeout, cancellationToken);
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
        {
            // An HAProxy that does not answer sends this instance nothing (a restarted one forgot every added server):
            // the instance stops as it would have; the next AddAsync or RouteAsync reports the socket.
        }
    }

    private async Task<string?> AddInMaintenanceAsync(IPEndPoint endpoint, CancellationToken cancellationToken)
    {
        var name = ServerName(endpoint);
        var added = await _api.SendAsync($"add server {Server(name)} {Address(endpoint)}", cancellationToken);
        return added.Contains("New server registered") ? null : $"haproxy refused `add server {Server(name)} {Address(endpoint)}`: {added.Trim()}";
    }

    private static string Address(IPEndPoint endpoint) =>
        endpoint.Address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{endpoint.Address}]:{endpoint.Port}" : endpoint.ToString();

    /// <summary>Drained servers out: wait for 0 current sessions, maint, then delete (retried while HAProxy still holds a connection).</summary>
    private async Task RemoveAsync(string[] names, TimeSpan drainTimeout, CancellationToken cancellationToken)
    {
        if (names.Length == 0) return;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < drainTimeout)
        {
            var busy = (await ServersAsync(cancellationToken)).Where(r => names.Contains(r["svname"]) && Number(r, "scur") > 0).ToArray();
            if (busy.Length == 0) break;
            // A drained server's sessions are requests in flight (keep-alive connections idle between requests do not
            // count), so they end within a response time: poll often, the switch's duration includes this wait.
            await Task.Delay(TimeSpan.FromMilliseconds(10), cancellationToken);
        }
        await _api.SendAsync(names.Select(n => $"set server {Server(n)} state maint").ToArray(), cancellationToken);
        var left = names.ToList();
        for (var attempt = 0; left.Count > 0 && attempt < 100; attempt++)
        {
            // drain_timeout is over when sessions are still attached: they are cut, as Cutover's own proxy does.
            if (clock.Elapsed >= drainTimeout || attempt > 20)
                await _api.SendAsync(left.Select(n => $"shutdown sessions server {Server(n)}").ToArray(), cancellationToken);
            foreach (var name in left.ToArray())
                if ((await _api.SendAsync($"del server {Server(name)}", cancellationToken)).Contains("Server deleted")) left.Remove(name);
            if (left.Count > 0) await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
        }
    }

    /// <summary>The servers of the backend (show stat rows, without the BACKEND line).</summary>
    private async Task<IReadOnlyList<IReadOnlyDictionary<string, string>>> ServersAsync(CancellationToken cancellationToken) =>
        (await _api.ShowStatAsync(config.Backend, cancellationToken)).Where(r => r.GetValueOrDefault("svname") is { } n && n != "BACKEND").ToList();

    /// <summary>
    /// HAProxy's own cumulative counters of the servers of <paramref name="endpoints"/>: responses (hrsp_1xx..other)
    /// and failures (hrsp_5xx plus connection errors). Cumulative: the monitor reads them as deltas from a baseline.
    /// </summary>
    /// Null when HAProxy did not answer (the monitor skips that reading).
    public async Task<(long Responses, long Errors)?> CountersAsync(IEnumerable<IPEndPoint> endpoints, CancellationToken cancellationToken)
    {
        var names = endpoints.Select(ServerName).ToHashSet();
        IReadOnlyDictionary<string, string>[] rows;
        try
        {
            rows = (await ServersAsync(cancellationToken)).Where(r => names.Contains(r["svname"])).ToArray();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
        {
            return null;
        }
        string[] statuses = ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"];
        return (rows.Sum(r => statuses.Sum(s => Number(r, s)) + Number(r, "econ")), rows.Sum(r => Number(r, "hrsp_5xx") + Number(r, "econ")));
    }

    private static long Number(IReadOnlyDictionary<string, string> row, string column) =>
        long.TryParse(row.GetValueOrDefault(column), CultureInfo.InvariantCulture, out var value) ? value : 0;
}
