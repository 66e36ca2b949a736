namespace Cutover.Doctor;

/// <summary>The agent's systemd unit (`cutover`, as in the README) present and enabled, so the agent comes back after a reboot.</summary>
public sealed class SystemdCheck(string unit = "cutover") : IDoctorCheck
{
    public string Name => "systemd";

    public async Task<DoctorFinding> RunAsync(CancellationToken cancellationToken)
    {
        // /run/systemd/system exists only while systemd is PID 1 (what sd_booted(3) tests).
        if (!Directory.Exists("/run/systemd/system") || RunningProcesses.OnPath("systemctl") is not { } systemctl)
            return DoctorFinding.Warning(Name, "systemd is not running here; nothing restarts the agent after a reboot",
                "start `cutover agent` from this machine's init system");
        var (code, stdout, stderr) = await RunningProcesses.RunAsync(systemctl, ["is-enabled", unit], TimeSpan.FromSeconds(10), cancellationToken);
        var state = (stdout.Trim() is { Length: > 0 } s ? s : stderr.Trim());
        return code == 0
            ? DoctorFinding.Ok(Name, $"{unit}.service is {state}")
            : DoctorFinding.Error(Name, $"{unit}.service is {(state.Length > 0 ? state : "not installed")}",
                $"install the unit from the README as /etc/systemd/system/{unit}.service, then `systemctl enable --now {unit}`");
    }
}
