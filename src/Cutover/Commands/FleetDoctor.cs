using System.Collections.Concurrent;
using Cutover.Config;
using Cutover.Doctor;
using Cutover.Fleet;
using Cutover.Progress;
using Cutover.Releases;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover doctor` with hosts: `cutover doctor --json` on every host with the build and config its last deploy
/// left there (as status does), each finding tagged with the host; plus what only the deployer can see: the host
/// key (a host that answered was known, or --accept-new-host-keys recorded it) and the host's clock against this one.
/// </summary>
public static class FleetDoctor
{
    /// <summary>Release ids are UTC seconds: a clock a second off can give a release an id that sorts before the live one's.</summary>
    private static readonly TimeSpan ClockError = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ClockWarning = TimeSpan.FromMilliseconds(500);

    public static async Task<IReadOnlyList<DoctorFinding>> RunAsync(CutoverConfig config, bool acceptNew, HostSelection selection, CancellationToken ct)
    {
        var offsets = new ConcurrentDictionary<string, TimeSpan>();
        var results = await new FleetCommand(config, new SilentProgress(), acceptNew, selection).QueryWithClockAsync(["doctor", "--json"], offsets, ct);
        var findings = new List<DoctorFinding>();
        foreach (var r in results)
        {
            var host = r.Host.Name;
            if (!r.NeverDeployed && r.Error is not null && !offsets.ContainsKey(host))
            {
                findings.Add(new DoctorFinding("ssh", DoctorStatus.Error, r.Error, "check the host's address, user and key; a new host's key: --accept-new-host-keys", host));
                continue;
            }
            findings.Add(new DoctorFinding("ssh", DoctorStatus.Ok, $"connected, host key known ({config.Fleet!.Ssh.KnownHosts})", null, host));
            findings.Add(offsets.TryGetValue(host, out var offset) ? Clock(host, offset) : new DoctorFinding("clock", DoctorStatus.Warning, "`date +%s.%N` gave no time", null, host));
            if (r.NeverDeployed)
            {
                findings.Add(new DoctorFinding("doctor", DoctorStatus.Warning, "nothing deployed yet: the host's checks run with the build a first deploy installs", "deploy once, then run doctor again", host));
                continue;
            }
            var remote = Json.TryRead<List<DoctorFinding>>(r.Stdout, out var problem);
            if (remote is null)
            {
                findings.Add(new DoctorFinding("doctor", DoctorStatus.Error, $"`cutover doctor --json` answered something Cutover cannot read ({problem}): {Json.Quote(r.Stdout.Trim())}",
                    "deploy with this cutover so the host runs the same build", host));
                continue;
            }
            findings.AddRange(remote.Select(f => f with { Host = host }));
        }
        return findings;
    }

    private static DoctorFinding Clock(string host, TimeSpan offset)
    {
        var text = $"{Math.Abs(offset.TotalSeconds):0.000} s {(offset < TimeSpan.Zero ? "behind" : "ahead of")} this machine";
        var fix = "run a time sync daemon (chrony or systemd-timesyncd) on every host";
        return offset.Duration() > ClockError ? new DoctorFinding("clock", DoctorStatus.Error, $"{text}: release ids (UTC seconds) may not sort by time", fix, host)
            : offset.Duration() > ClockWarning ? new DoctorFinding("clock", DoctorStatus.Warning, text, fix, host)
            : new DoctorFinding("clock", DoctorStatus.Ok, text, null, host);
    }
}
