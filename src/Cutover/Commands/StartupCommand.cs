using System.CommandLine;
using System.Diagnostics;
using Cutover.Deploy;
using Cutover.Platform;
using Cutover.Startup;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover startup [--user U] [--install] [--force]`: the agent's systemd unit filled in for this machine (this cutover's
/// real path, the user, CUTOVER_HOME), printed, or installed and enabled, as `pm2 startup` does.
/// </summary>
public static class StartupCommand
{
    /// <summary>Where --install writes the unit; the variable moves it (tests, an image being built under another root).</summary>
    public const string UnitPathVariable = "CUTOVER_SYSTEMD_UNIT";
    private const string SystemUnitDir = "/etc/systemd/system";

    public static Command Create(CliEnvironment env)
    {
        var user = new Option<string?>("--user", "-u") { Description = "The user the agent runs as (default: this user); its CUTOVER_HOME is ~/.cutover" };
        var install = new Option<bool>("--install") { Description = $"Write the unit to {SystemUnitDir}/cutover.service, enable it and start it (systemctl), instead of printing it" };
        var force = new Option<bool>("--force") { Description = "With --install: replace an existing unit that differs" };
        var command = new Command("startup", "Print (or --install) the systemd unit that runs the agent at boot") { user, install, force };
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            if (parse.GetValue(force) && !parse.GetValue(install)) throw new UsageException("--force is for --install (it replaces an existing unit); without --install nothing is written");
            var values = await ValuesAsync(parse.GetValue(user), ct);
            var unit = AgentUnit.Render(values);
            if (!parse.GetValue(install))
            {
                env.Out.Write(unit);
                env.Error.WriteLine($"# to install it: cutover startup{(parse.GetValue(user) is { } u ? $" --user {u}" : "")} --install (as root)");
                return ExitCodes.Ok;
            }
            return await InstallAsync(env, unit, parse.GetValue(force), ct);
        }));
        return command;
    }

    /// <summary>The user (checked to exist), its CUTOVER_HOME and the real command that is this cutover.</summary>
    private static async Task<AgentUnitValues> ValuesAsync(string? requested, CancellationToken ct)
    {
        var name = requested ?? Environment.UserName;
        var entry = await RunAsync("getent", ["passwd", name], ct);
        var fields = entry.Status == 0 ? entry.Stdout.Trim().Split(':') : [];
        if (fields.Length < 7) throw new UsageException($"--user {name}: there is no such user on this machine");
        // This user's own agent home is the one `cutover deploy` here uses (CUTOVER_HOME included); another user's is theirs.
        var home = requested is null || requested == Environment.UserName ? Agent.AgentHome.FromEnvironment().Path : Path.Combine(fields[5], ".cutover");
        if (home.Any(char.IsWhiteSpace)) throw new UsageException($"CUTOVER_HOME '{home}' has a space in it, which the unit's Environment= line cannot carry; choose a path without one");
        // The executable that runs now (the kernel's /proc/self/exe, so a symlink is resolved), and for a build run by
        // dotnet, its cutover.dll: what the boot will run is what was tried here.
        var self = AgentCommands.SelfCommand().Select((word, i) => i == 0 || word.EndsWith(".dll", StringComparison.Ordinal) ? Path.GetFullPath(word) : word).ToList();
        return new AgentUnitValues(fields[0], home, self);
    }

    private static async Task<int> InstallAsync(CliEnvironment env, string unit, bool force, CancellationToken ct)
    {
        var path = Environment.GetEnvironmentVariable(UnitPathVariable) is { Length: > 0 } moved ? Path.GetFullPath(moved) : Path.Combine(SystemUnitDir, "cutover.service");
        var name = Path.GetFileName(path);
        if (!name.EndsWith(".service", StringComparison.Ordinal)) throw new UsageException($"{UnitPathVariable}={path}: a unit file's name ends in .service");
        var dir = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir)) throw new DeployException($"{dir} does not exist: is systemd installed here? (`cutover startup` prints the unit to put elsewhere)");
        if (File.Exists(path) && File.ReadAllText(path) is var existing && existing != unit)
        {
            if (!force) throw new UsageException($"{path} exists and differs from the unit for this machine; nothing was changed (`cutover startup` prints the new one; --force replaces it)");
        }
        if (!File.Exists(path) || File.ReadAllText(path) != unit)
        {
            AtomicFile.WriteAllText(path, unit, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            env.Out.WriteLine($"wrote {path}");
        }
        else env.Out.WriteLine($"{path} is already this unit");

        // systemd reads /etc/systemd/system only when it runs (sd_booted: /run/systemd/system exists); elsewhere (a
        // container, a unit written for an image) enabling is what `systemctl enable` does offline: the wants link.
        if (Directory.Exists("/run/systemd/system") && dir == SystemUnitDir)
        {
            foreach (var args in new[] { new[] { "daemon-reload" }, ["enable", "--now", name] })
            {
                var run = await RunAsync("systemctl", args, ct);
                if (run.Status != 0) throw new DeployException($"systemctl {string.Join(' ', args)} failed (exit {run.Status}): {run.Stderr.Trim()}");
            }
            env.Out.WriteLine($"enabled and started {name}: `systemctl status {name}` shows it, `journalctl -u {name}` its log");
            return ExitCodes.Ok;
        }
        var wants = Path.Combine(dir, AgentUnit.WantedBy + ".wants");
        Directory.CreateDirectory(wants);
        var link = Path.Combine(wants, name);
        if (new FileInfo(link).LinkTarget != path)
        {
            if (File.Exists(link) || new FileInfo(link).LinkTarget is not null) File.Delete(link);
            File.CreateSymbolicLink(link, path);
        }
        env.Out.WriteLine($"enabled {name} ({link} -> {path})");
        env.Error.WriteLine($"error: could not start {name}: systemd is not running here (PID 1 is {Pid1()}), so it starts at the next boot with systemd; " +
                            "until then run `cutover agent` (or `cutover deploy`, which starts it)");
        return ExitCodes.Failed;
    }

    private static string Pid1()
    {
        try
        {
            return File.ReadAllText("/proc/1/comm").Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    private static async Task<(int Status, string Stdout, string Stderr)> RunAsync(string file, IReadOnlyList<string> args, CancellationToken ct)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new DeployException($"could not run {file}");
        var stdout = process.StandardOutput.ReadToEndAsync(ct);
        var stderr = process.StandardError.ReadToEndAsync(ct);
        await process.WaitForExitAsync(ct);
        return (process.ExitCode, await stdout, await stderr);
    }
}
