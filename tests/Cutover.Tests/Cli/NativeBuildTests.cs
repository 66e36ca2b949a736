using System.Diagnostics;
using System.Globalization;
using Cutover.Tests.Support;

namespace Cutover.Tests.Cli;

/// <summary>
/// What `dotnet publish src/Cutover` gives users (README, "Install"): a Native AOT `cutover` that runs status, releases,
/// rollback, probe and --version itself, and hands every other command (deploy, the agent) to the JIT build in jit/
/// (issue 14: everyday commands under 100 ms). One publish per run (minutes), so one test: the native binary's answers
/// must be the JIT build's, byte for byte, and a deploy/rollback through it must work end to end, agent included.
/// </summary>
// Not in the serial collection: it asserts what the native build does, not how fast.
[Trait(Needs.Trait, Needs.Slow)]
[RunsFor(160)]
public sealed class NativeBuildTests
{
    [Fact]
    public async Task Published_cutover_is_native_answers_as_the_JIT_build_does_and_deploys_and_rolls_back_end_to_end()
    {
        using var dir = new TempDir("cutover-native-");
        var publish = dir.Combine("publish");
        await PublishAsync(publish);
        var native = Path.Combine(publish, "cutover");
        var jit = Path.Combine(publish, "jit", "cutover");
        // Native: one executable without the IL beside it; the JIT build (IL + apphost) in jit/.
        Assert.False(File.Exists(Path.Combine(publish, "cutover.dll")), "a native cutover has no cutover.dll beside it");
        Assert.True(File.Exists(Path.Combine(publish, "jit", "cutover.dll")), "the JIT build is published in jit/");

        var home = dir.Combine("home");
        var environment = new Dictionary<string, string> { ["CUTOVER_HOME"] = home };
        Task<CliResult> Native(params string[] args) => CutoverCli.RunPublishedAsync(native, dir.Path, environment, args);
        Task<CliResult> Jit(params string[] args) => CutoverCli.RunPublishedAsync(jit, dir.Path, environment, args);

        // A symlink root, deployed through the native binary (deploy is handed to the JIT build).
        var source = dir.Combine("site");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "index.html"), "hello\n");
        var config = dir.Combine("symlink.yml");
        File.WriteAllText(config, $"app: native\nroot: {dir.Combine("root")}\nkeep_releases: 5\n");
        for (var i = 0; i < 2; i++)
        {
            var deployed = await Native("deploy", source, "-c", config);
            Assert.True(deployed.ExitCode == 0, deployed.All);
        }

        // The hot commands, and bad input, answer exactly as the JIT build does.
        string[][] same =
        [
            ["--version"], ["probe", "--help"], ["status", "-c", config], ["releases", "-c", config], ["status", "--json", "-c", config],
            ["releases", "--json", "-c", config], ["status", "-c", dir.Combine("missing.yml")], ["rollback", "no_such_release", "-c", config],
            ["status", "--hosts", "a", "-c", config],
        ];
        foreach (var args in same)
        {
            var fromNative = await Native(args);
            var fromJit = await Jit(args);
            Assert.True((fromJit.ExitCode, fromJit.Stdout, fromJit.Stderr) == (fromNative.ExitCode, fromNative.Stdout, fromNative.Stderr),
                $"cutover {string.Join(' ', args)}\nnative ({fromNative.ExitCode}):\n{fromNative.All}\nJIT ({fromJit.ExitCode}):\n{fromJit.All}");
        }
        Assert.Equal(2, (await Native("status", "-c", dir.Combine("missing.yml"))).ExitCode);

        // rollback by the native binary: `current` moves, history records it (read through the handed-over `history`).
        var releases = Directory.GetDirectories(dir.Combine("root", "releases")).Select(Path.GetFileName).Order().ToList();
        var rolledBack = await Native("rollback", "-c", config);
        Assert.True(rolledBack.ExitCode == 0, rolledBack.All);
        Assert.Contains($"rolled back native from {releases[1]} to {releases[0]}", rolledBack.Stdout);
        Assert.Equal(releases[0], Path.GetFileName(File.ResolveLinkTarget(dir.Combine("root", "current"), returnFinalTarget: false)!.FullName));
        var history = await Native("history", "--json", "-c", config);
        Assert.True(history.ExitCode == 0, history.All);
        Assert.Contains("\"action\": \"rollback\"", history.Stdout);
        // rollback --json is handed over and ends with its result line (back to the newer release, named).
        var json = await Native("rollback", releases[1]!, "--json", "-c", config);
        Assert.True(json.ExitCode == 0, json.All);
        Assert.StartsWith("{\"event\":\"result\",\"command\":\"rollback\"", json.Stdout.TrimEnd().Split('\n')[^1]);

        // Blue-green under the agent: the native deploy starts the agent, which runs from the JIT build.
        var port = Cutover.Platform.LoopbackPort.Free();
        var blueGreen = dir.Combine("bg.yml");
        File.WriteAllText(blueGreen, $"app: nativebg\nstrategy: blue-green\nroot: {dir.Combine("bg-root")}\nrun:\n  command: node server.js\n  instances: 1\n  ready: message\n" +
                                     $"proxy:\n  listen: 127.0.0.1:{port}\n  drain_timeout: 1s\nblue_green:\n  monitor: 0s\n");
        try
        {
            foreach (var version in new[] { "v1", "v2" })
            {
                var app = dir.Combine(version);
                Directory.CreateDirectory(app);
                File.Copy(Path.Combine(Repo.Root, "examples", "node-app", "server.js"), Path.Combine(app, "server.js"));
                File.WriteAllText(Path.Combine(app, "VERSION"), version);
                var deployed = await Native("deploy", app, "-c", blueGreen);
                Assert.True(deployed.ExitCode == 0, deployed.All);
            }
            var agentPid = int.Parse(File.ReadAllText(Path.Combine(home, "agent.pid")).Trim(), CultureInfo.InvariantCulture);
            Assert.Equal(Path.GetFullPath(jit), File.ResolveLinkTarget($"/proc/{agentPid}/exe", returnFinalTarget: false)!.FullName);
            using var http = new HttpClient();
            Assert.Contains("v2", await http.GetStringAsync($"http://127.0.0.1:{port}/"));

            var status = await Native("status", "-c", blueGreen);
            Assert.True(status.ExitCode == 0, status.All);
            Assert.Contains($"pid {agentPid}", status.Stdout);
            var back = await Native("rollback", "-c", blueGreen);
            Assert.True(back.ExitCode == 0, back.All);
            Assert.Contains("v1", await http.GetStringAsync($"http://127.0.0.1:{port}/"));
        }
        finally
        {
            StopAgent(home);
        }
    }

    private static async Task PublishAsync(string output)
    {
        await CutoverPublish.Gate.WaitAsync();
        try
        {
            await PublishOnceAsync(output);
        }
        finally
        {
            CutoverPublish.Gate.Release();
        }
    }

    private static async Task PublishOnceAsync(string output)
    {
        var start = new ProcessStartInfo("dotnet", ["publish", Path.Combine(Repo.Root, "src", "Cutover"), "-c", "Release", "-o", output, "-nologo", "-v", "q"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"dotnet publish failed: {await stdout}{await stderr}");
    }

    /// <summary>SIGTERM to the agent by its pid file: it stops the instances and exits.</summary>
    private static void StopAgent(string home)
    {
        var pidFile = Path.Combine(home, "agent.pid");
        if (!File.Exists(pidFile)) return;
        var pid = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);
        Cutover.Platform.LibC.Kill(pid, 15);
        Wait.Until(() => !Directory.Exists($"/proc/{pid}"), TimeSpan.FromSeconds(20), "the agent to exit");
    }
}

/// <summary>
/// Which command lines the native binary runs itself: only those whose command it holds, and anything it cannot read for
/// certain goes to the JIT build, which runs every command.
/// </summary>
public sealed class NativeBuildDispatchTests
{
    [Theory]
    [InlineData(true, "--version")]
    [InlineData(true, "status")]
    [InlineData(true, "-c", "a.yml", "status", "--json")]
    [InlineData(true, "--config=a.yml", "-v", "releases")]
    [InlineData(true, "rollback", "20261130_120000", "-c", "a.yml")]
    [InlineData(true, "probe", "--help")]
    [InlineData(false, "rollback", "--json")]
    [InlineData(false, "deploy", "./build")]
    [InlineData(false, "agent", "--quiet")]
    [InlineData(false, "--help")]
    [InlineData(false)]
    [InlineData(false, "-c", "status")]
    [InlineData(false, "@args.rsp")]
    [InlineData(false, "--json", "status")]
    public void Native_binary_runs_only_the_commands_it_holds(bool itself, params string[] args) =>
        Assert.Equal(itself, Cutover.Cli.Commands.NativeBuild.RunsItself(args));
}
