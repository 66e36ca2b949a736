using Cutover.Config;

namespace Cutover.Doctor;

/// <summary>
/// With opcache.validate_timestamps=0 PHP never looks at a file again once compiled, so something must reset
/// opcache when a release goes live (an after_switch hook: cachetool, opcache_reset, a php-fpm reload). Read from
/// the running php-fpm's binary (`-i`), only when nginx serves PHP from the root.
/// </summary>
public sealed class OpcacheCheck(NginxCheck nginx, HooksConfig hooks) : IDoctorCheck
{
    private static readonly string[] ResetHooks = ["cachetool", "opcache_reset", "opcache:reset", "php-fpm", "fpm reload", "fpm restart"];

    public string Name => "opcache";

    public async Task<DoctorFinding> RunAsync(CancellationToken cancellationToken)
    {
        if (!nginx.ServesPhp) return DoctorFinding.Ok(Name, "nginx serves no PHP from the root");
        var fpm = RunningProcesses.WithCommandLine("php-fpm: master process").Select(p => p.Exe).FirstOrDefault(e => e is not null)
            ?? (Directory.Exists("/usr/sbin") ? Directory.GetFiles("/usr/sbin", "php-fpm*").Order().LastOrDefault() : null);
        if (fpm is null) return DoctorFinding.Warning(Name, "no php-fpm found to read opcache.validate_timestamps from");
        var (code, stdout, stderr) = await RunningProcesses.RunAsync(fpm, ["-i"], TimeSpan.FromSeconds(10), cancellationToken);
        if (code != 0) return DoctorFinding.Warning(Name, $"{fpm} -i failed: {stderr.Trim()}");
        string? Setting(string key) => stdout.Split('\n').Select(l => l.Split("=>", StringSplitOptions.TrimEntries))
            .FirstOrDefault(parts => parts.Length >= 2 && parts[0] == key)?[1];
        if (Setting("opcache.enable") is not ("On" or "1")) return DoctorFinding.Ok(Name, $"opcache is off in {Path.GetFileName(fpm)}");
        if (Setting("opcache.validate_timestamps") is not ("Off" or "0")) return DoctorFinding.Ok(Name, "opcache.validate_timestamps is on");
        if (hooks.AfterSwitch.Any(h => ResetHooks.Any(r => h.Contains(r, StringComparison.OrdinalIgnoreCase))))
            return DoctorFinding.Ok(Name, "opcache.validate_timestamps=0, reset by an after_switch hook");
        return DoctorFinding.Warning(Name, "opcache.validate_timestamps=0 and no after_switch hook resets opcache: each release's files stay cached until php-fpm restarts",
            "add an after_switch hook that resets opcache (e.g. `cachetool opcache:reset --fcgi=...`), or set opcache.validate_timestamps=1");
    }
}
