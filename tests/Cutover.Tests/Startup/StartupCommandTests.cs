using System.Diagnostics;
using Cutover.Startup;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Startup;

/// <summary>
/// `cutover startup` through the real CLI: the README's unit and the command's output are one template; the output,
/// filled in for this machine, passes `systemd-analyze verify`; --install writes and enables into a directory of the
/// test's (systemd is not PID 1 here, so it says it could not start the agent, exit 1) and never replaces another unit
/// without --force.
/// </summary>
public sealed class StartupCommandTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private async Task<CliResult> Cli(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var result = await CutoverCli.RunAsync(_dir.Path, environment, args);
        output.WriteLine($"$ cutover {string.Join(' ', args)}  (exit {result.ExitCode})\n{result.Stdout}{result.Stderr}");
        return result;
    }

    private static string ReadmeUnit()
    {
        var readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        var start = readme.IndexOf("```ini\n", StringComparison.Ordinal) + "```ini\n".Length;
        return readme[start..readme.IndexOf("```", start, StringComparison.Ordinal)];
    }

    [Fact]
    public async Task The_output_is_the_READMEs_unit_filled_in_for_this_machine_and_systemd_analyze_accepts_it()
    {
        // One source: the README's block is the template with the README's example values.
        Assert.Equal(AgentUnit.Render(AgentUnit.ReadmeExample), ReadmeUnit());

        var home = _dir.Combine("agent-home");
        var runs = await Task.WhenAll(
            Cli(new Dictionary<string, string> { ["CUTOVER_HOME"] = home }, "startup"),
            Cli(new Dictionary<string, string> { ["CUTOVER_HOME"] = _dir.Combine("agent home") }, "startup"),
            Cli(new Dictionary<string, string>(), "startup", "--user", "nobody"),
            Cli(new Dictionary<string, string>(), "startup", "--user", "no-such-user-here"),
            Cli(new Dictionary<string, string>(), "startup", "--force"));
        var (printed, spaced, other, unknown, forceAlone) = (runs[0], runs[1], runs[2], runs[3], runs[4]);
        Assert.Equal(2, spaced.ExitCode); // a home the Environment= line cannot carry is refused, not written broken
        Assert.Equal(2, unknown.ExitCode);
        Assert.Equal(2, forceAlone.ExitCode); // --force writes nothing without --install: refused, not ignored
        Assert.Equal(0, printed.ExitCode);
        var expected = AgentUnit.Render(new AgentUnitValues(Environment.UserName, home, [Path.GetFullPath(new FileInfo(Which("dotnet")).ResolveLinkTarget(true)?.FullName ?? Which("dotnet")), "exec", CutoverCli.Dll]));
        Assert.Equal(expected, printed.Stdout);
        // The README's unit with only the user, CUTOVER_HOME and the command changed.
        var readme = ReadmeUnit().Split('\n');
        var mine = printed.Stdout.Split('\n');
        Assert.Equal(readme.Length, mine.Length);
        var differing = readme.Zip(mine).Where(p => p.First != p.Second).Select(p => p.First.Split('=')[0] + (p.First.StartsWith("Environment=", StringComparison.Ordinal) ? "=" + p.First.Split('=')[1] : "")).ToList();
        Assert.Equal(["User", "Environment=CUTOVER_HOME", "ExecStart", "ExecReload"], differing);

        Assert.Equal(0, other.ExitCode);
        Assert.Contains("User=nobody\n", other.Stdout);
        Assert.Contains("Environment=CUTOVER_HOME=/nonexistent/.cutover\n", other.Stdout);

        if (!File.Exists("/usr/bin/systemd-analyze")) return;
        var path = _dir.Combine("cutover.service");
        File.WriteAllText(path, printed.Stdout);
        var start = new ProcessStartInfo("/usr/bin/systemd-analyze", ["verify", path]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var verify = Process.Start(start)!;
        var stderr = verify.StandardError.ReadToEndAsync();
        var stdout = verify.StandardOutput.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await verify.WaitForExitAsync(timeout.Token);
        Assert.True(verify.ExitCode == 0, $"systemd-analyze verify: exit {verify.ExitCode}: {await stderr}{await stdout}");
        Assert.DoesNotContain("cutover.service:", await stderr);
    }

    [Fact]
    public async Task Install_writes_and_enables_says_it_could_not_start_without_systemd_and_replaces_another_unit_only_with_force()
    {
        var unitDir = _dir.Combine("etc", "systemd", "system");
        var unitPath = Path.Combine(unitDir, "cutover.service");
        var environment = new Dictionary<string, string> { ["CUTOVER_SYSTEMD_UNIT"] = unitPath, ["CUTOVER_HOME"] = _dir.Combine("home") };

        var first = await Task.WhenAll(Cli(environment, "startup", "--install"), Cli(environment, "startup"));
        Assert.Equal(1, first[0].ExitCode); // no such directory: is systemd installed?
        Assert.False(File.Exists(unitPath));
        Directory.CreateDirectory(unitDir);
        var printed = first[1].Stdout;
        var install = await Cli(environment, "startup", "--install");
        Assert.Equal(1, install.ExitCode); // written and enabled, but not started: systemd is not PID 1 in this container
        Assert.Equal(printed, File.ReadAllText(unitPath));
        var wants = Path.Combine(unitDir, "multi-user.target.wants", "cutover.service");
        Assert.Equal(unitPath, new FileInfo(wants).LinkTarget);
        Assert.Contains($"wrote {unitPath}", install.Stdout);
        Assert.Contains("enabled cutover.service", install.Stdout);
        Assert.Contains("error: could not start cutover.service: systemd is not running here", install.Stderr);

        var again = await Cli(environment, "startup", "--install");
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("is already this unit", again.Stdout);

        File.WriteAllText(unitPath, "[Service]\nExecStart=/bin/true\n");
        var refused = await Cli(environment, "startup", "--install");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("differs from the unit for this machine", refused.Stderr);
        Assert.Equal("[Service]\nExecStart=/bin/true\n", File.ReadAllText(unitPath));

        var forced = await Cli(environment, "startup", "--install", "--force");
        Assert.Equal(1, forced.ExitCode);
        Assert.Equal(printed, File.ReadAllText(unitPath));
    }

    private static string Which(string name) =>
        Environment.GetEnvironmentVariable("PATH")!.Split(':').Select(d => Path.Combine(d, name)).First(File.Exists);
}
