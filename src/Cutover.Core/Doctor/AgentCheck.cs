using Cutover.Agent;

namespace Cutover.Doctor;

/// <summary>
/// The agent of this CUTOVER_HOME: running, answering on its socket, and of the CLI's version (an older agent runs
/// code this CLI's deploy no longer expects; `cutover agent upgrade` replaces it without dropping a request).
/// </summary>
public sealed class AgentCheck(string root) : IDoctorCheck
{
    public string Name => "agent";

    public async Task<DoctorFinding> RunAsync(CancellationToken cancellationToken)
    {
        var home = AgentHome.FromEnvironment();
        using var client = new AgentClient(home);
        if (!await client.IsRunningAsync(cancellationToken))
        {
            // Nothing live yet: the first deploy starts the agent. Something live and no agent: nothing serves it.
            return File.Exists(Path.Combine(root, "current")) || Directory.Exists(Path.Combine(root, "current"))
                ? DoctorFinding.Error(Name, $"the agent is not running (no answer on {home.Socket}), so nothing serves the live release",
                    "start it: `cutover agent` under systemd (unit in the README), or `cutover start`")
                : DoctorFinding.Warning(Name, $"the agent is not running (no answer on {home.Socket}); the first deploy starts it",
                    "run it under systemd (unit in the README) so it starts with the machine");
        }
        var info = await client.InfoAsync(cancellationToken);
        if (info.Version != CutoverVersion.Current)
            return DoctorFinding.Error(Name, $"the agent (pid {info.Pid}) is version {info.Version ?? "unknown (older than this cutover)"}, this cutover is {CutoverVersion.Current}",
                "`cutover agent upgrade` hands everything to an agent of this version without dropping requests");
        return DoctorFinding.Ok(Name, $"the agent (pid {info.Pid}) answers on {home.Socket}, version {info.Version}");
    }
}
