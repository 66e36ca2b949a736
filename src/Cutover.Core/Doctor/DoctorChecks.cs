using Cutover.Config;

namespace Cutover.Doctor;

/// <summary>
/// The checks a config calls for (no agent, port or systemd check for a symlink app, no database check without
/// migrations), and the one place a check that throws becomes a warning: doctor reports, it does not crash.
/// </summary>
public static class DoctorChecks
{
    public static IReadOnlyList<IDoctorCheck> For(CutoverConfig config)
    {
        var checks = new List<IDoctorCheck>
        {
            new RootWritableCheck(config.Root),
            new RootFilesystemCheck(config.Root),
            new DiskSpaceCheck(config.Root),
        };
        // A symlink app is normally behind a web server that must follow `current`; any other strategy only when
        // nginx is found serving the root (the check then says so, else it is ok).
        var nginx = new NginxCheck(config.Root, required: config.Strategy == Strategy.Symlink);
        checks.Add(nginx);
        checks.Add(new OpcacheCheck(nginx, config.Hooks));
        if (config.Settings is InstanceSettings instances)
        {
            checks.Add(new ProxyPortCheck(config.App, instances.Proxy.Listen));
            if (instances.Proxy.Tls is { } tls) checks.Add(new ProxyPortCheck(config.App, tls.Listen));
            checks.Add(new AgentCheck(config.Root));
            checks.Add(new SystemdCheck());
        }
        if (config.Migrations is { } migrations) checks.Add(new DatabaseCheck(migrations, Environment.GetEnvironmentVariable));
        return checks;
    }

    public static async Task<IReadOnlyList<DoctorFinding>> RunAsync(IEnumerable<IDoctorCheck> checks, CancellationToken cancellationToken)
    {
        var findings = new List<DoctorFinding>();
        foreach (var check in checks)
        {
            try
            {
                findings.Add(await check.RunAsync(cancellationToken));
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                findings.Add(DoctorFinding.Warning(check.Name, $"could not run: {e.Message}"));
            }
        }
        return findings;
    }
}
