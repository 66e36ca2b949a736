namespace Cutover.History;

/// <summary>
/// One line of `cutover history --json` on one root (and what a fleet deployer reads back from each host). The field
/// names are public (README, "History"): action (deploy, rollback, restart), release, revision, from (the release
/// before it), user, started and finished (UTC), seconds, outcome, reason (why it failed, was rolled back or
/// cancelled), fleet_deploy (the id every host of one fleet deploy shares; null for a deploy made on that machine).
/// </summary>
public sealed record HistoryView(
    string Action,
    string? Release,
    string? Revision,
    string? From,
    string User,
    DateTimeOffset Started,
    DateTimeOffset Finished,
    double Seconds,
    string Outcome,
    string? Reason,
    string? FleetDeploy)
{
    public static HistoryView Of(HistoryEntry e) =>
        new(e.Action, NullIfEmpty(e.Release), e.Revision, e.From, e.User, e.Started, e.Finished, e.Seconds, e.Outcome, e.Error, e.FleetDeploy);

    /// <summary>A root's history newest first (by when it finished: the order it was appended in).</summary>
    public static IReadOnlyList<HistoryView> Newest(IEnumerable<HistoryEntry> entries, int? limit)
    {
        var views = entries.Select(Of).Reverse();
        return (limit is { } n ? views.Take(n) : views).ToList();
    }

    // A fleet undo of a first release went back to nothing: written as "", shown as no release.
    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}

/// <summary>One host's line of a fleet history entry.</summary>
public sealed record HostHistoryView(string Host, HistoryView Entry);

/// <summary>
/// One line of `cutover history --json` with hosts: a fleet deploy (or rollback) with every host's line of it, or
/// a line only one host has (a deploy made on that host itself, or an entry written before fleet ids). Outcome is
/// the hosts' common outcome, or "mixed"; reason the first host's reason that is not null, prefixed with its host.
/// </summary>
public sealed record FleetHistoryView(
    string Action,
    string? Release,
    string? Revision,
    string User,
    DateTimeOffset Started,
    DateTimeOffset Finished,
    double Seconds,
    string Outcome,
    string? Reason,
    string? FleetDeploy,
    IReadOnlyList<HostHistoryView> Hosts)
{
    /// <summary>
    /// Every host's entries grouped by fleet deploy id and action (one deploy is a deploy line per host, and a
    /// rollback line per host it was taken back on), newest first, at most <paramref name="limit"/> lines.
    /// </summary>
    public static IReadOnlyList<FleetHistoryView> Group(IEnumerable<(string Host, IReadOnlyList<HistoryView> Entries)> hosts, int? limit)
    {
        var lines = hosts
            .SelectMany(h => h.Entries.Select(e => new HostHistoryView(h.Host, e)))
            .GroupBy(h => h.Entry.FleetDeploy is { } id ? $"{id}/{h.Entry.Action}" : $"{h.Host}/{h.Entry.Action}/{h.Entry.Started:O}")
            .Select(g => Of(g.OrderBy(h => h.Host, StringComparer.Ordinal).ToList()))
            .OrderByDescending(l => l.Finished);
        return (limit is { } n ? lines.Take(n) : lines).ToList();
    }

    private static FleetHistoryView Of(IReadOnlyList<HostHistoryView> hosts)
    {
        var entries = hosts.Select(h => h.Entry).ToList();
        var started = entries.Min(e => e.Started);
        var finished = entries.Max(e => e.Finished);
        var outcomes = entries.Select(e => e.Outcome).Distinct().ToList();
        var reason = hosts.FirstOrDefault(h => h.Entry.Reason is not null) is { } why ? (hosts.Count > 1 ? $"{why.Host}: {why.Entry.Reason}" : why.Entry.Reason) : null;
        return new FleetHistoryView(entries[0].Action, Common(entries.Select(e => e.Release)), Common(entries.Select(e => e.Revision)), entries[0].User,
            started, finished, Math.Round((finished - started).TotalSeconds, 3), outcomes.Count == 1 ? outcomes[0] : "mixed", reason, entries[0].FleetDeploy, hosts);
    }

    /// <summary>The value every host agrees on, else the distinct ones joined (hosts that named a release differently).</summary>
    private static string? Common(IEnumerable<string?> values)
    {
        var distinct = values.Distinct().ToList();
        return distinct.Count == 1 ? distinct[0] : string.Join(",", distinct.Select(v => v ?? "-"));
    }
}
