using System.Diagnostics;
using Cutover.Tests.Support;

namespace Cutover.Tests.Platform;

/// <summary>
/// The systemd unit the README gives for the agent (the one place it is shipped): the settings the upgrade relies on,
/// and, where systemd-analyze is installed, systemd's own parser accepting the file (systemd cannot run here as PID 1).
/// </summary>
public sealed class SystemdUnitTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string ReadmeUnit()
    {
        var readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        var start = readme.IndexOf("```ini\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "README has no ```ini block");
        start += "```ini\n".Length;
        return readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)];
    }

    [Fact]
    public async Task The_READMEs_unit_is_Type_notify_with_NotifyAccess_all_and_reloads_by_cutover_agent_upgrade()
    {
        var unit = ReadmeUnit();
        var service = unit[unit.IndexOf("[Service]", StringComparison.Ordinal)..].Split('\n')
            .Where(l => l.Contains('=')).Select(l => l.Split('=', 2)).ToLookup(kv => kv[0].Trim(), kv => kv[1].Trim());
        Assert.Equal(["notify"], service["Type"]);
        Assert.Equal(["all"], service["NotifyAccess"]); // the new agent's MAINPID= comes from a process that is not yet the main one
        Assert.Equal(["/usr/local/bin/cutover agent"], service["ExecStart"]);
        Assert.Equal(["/usr/local/bin/cutover agent upgrade"], service["ExecReload"]);
        Assert.Equal(["SIGTERM"], service["KillSignal"]); // the agent drains on SIGTERM; SIGHUP it does not handle

        if (!File.Exists("/usr/bin/systemd-analyze")) return;
        // verify checks that executables exist and users resolve: the same unit with this machine's stand-ins.
        var path = _dir.Combine("cutover.service");
        File.WriteAllText(path, unit.Replace("/usr/local/bin/cutover", "/bin/true").Replace("User=deploy", "User=root"));
        var start = new ProcessStartInfo("/usr/bin/systemd-analyze", ["verify", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var verify = Process.Start(start)!;
        var stderr = verify.StandardError.ReadToEndAsync();
        var stdout = verify.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await verify.WaitForExitAsync(timeout.Token);
        Assert.True(verify.ExitCode == 0, $"systemd-analyze verify: exit {verify.ExitCode}: {await stderr}{await stdout}");
        Assert.DoesNotContain("cutover.service:", await stderr); // a warning about the unit itself (unknown key, bad value)
    }
}
