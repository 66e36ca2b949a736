using System.Diagnostics;
using System.Text.Json;
using Cutover.Cli.Commands;
using Cutover.Cli.Output;
using Cutover.Config;
using Cutover.Fleet;
using Cutover.Progress;
using Cutover.Tests.Support;

namespace Cutover.Tests.Cli;

/// <summary>The `cutover` binary as users meet it: exit codes, messages, --json, init, releases, status.</summary>
[Trait(Needs.Trait, Needs.Slow)]
[RunsFor(80)]
public class CliTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _root;
    private readonly string _source;

    public CliTests()
    {
        _root = _dir.Combine("root");
        _source = _dir.Combine("src");
        AppFactory.WriteHelloPhp(_source, "1.0.0");
    }

    public void Dispose() => _dir.Dispose();

    private Task<CliResult> Run(params string[] args) => CutoverCli.RunAsync(_dir.Path, args);

    [Fact]
    public async Task A_config_mistake_exits_2_naming_file_line_column_and_key_and_touches_nothing()
    {
        var config = AppFactory.WriteConfig(_dir.Path, _root, "hooks:\n  bulid: [make]\n");
        var result = await Run("deploy", _source);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains($"error: {config}:5:3: hooks.bulid: unknown key in 'hooks'; did you mean 'build'?", result.Stderr);
        Assert.False(Directory.Exists(_root));
    }

    [Fact]
    public async Task Init_writes_a_commented_config_that_loads_and_refuses_to_overwrite()
    {
        // A static site: init's stack detection (Init/InitCommandTests has every stack) picks symlink and no hooks.
        File.WriteAllText(_dir.Combine("index.html"), "<p>hi</p>");
        var result = await Run("init", "--root", _root);
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("detected: static (index.html)", result.Stdout);
        var text = File.ReadAllText(_dir.Combine("cutover.yml"));
        Assert.Contains("# ", text);
        Assert.Contains("strategy: symlink", text);
        Assert.Contains($"root: {_root}", text);
        var app = new DirectoryInfo(_dir.Path).Name;
        Assert.Contains($"app: {app}", text);

        var deploy = await Run("deploy", _source);
        Assert.True(deploy.ExitCode == 0, deploy.All);

        var again = await Run("init");
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("already exists", again.Stderr);
    }

    [Fact]
    public async Task Deploy_releases_status_and_rollback_speak_json()
    {
        AppFactory.WriteConfig(_dir.Path, _root);
        var first = await Run("deploy", _source, "--revision", "abc1234", "--json");
        Assert.True(first.ExitCode == 0, first.All);
        var events = first.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Contains(events, e => e.GetProperty("event").GetString() == "phase_completed" && e.GetProperty("phase").GetString() == "switch");
        var result = events[^1];
        Assert.Equal("result", result.GetProperty("event").GetString());
        Assert.Equal("success", result.GetProperty("outcome").GetString());
        Assert.Equal("abc1234", result.GetProperty("revision").GetString());
        var firstId = result.GetProperty("release").GetString();

        AppFactory.WriteHelloPhp(_source, "2.0.0");
        Assert.Equal(0, (await Run("deploy", _source, "--revision", "def5678")).ExitCode);

        var releases = JsonDocument.Parse((await Run("releases", "--json")).Stdout).RootElement;
        Assert.Equal(2, releases.GetArrayLength());
        Assert.Equal("def5678", releases[0].GetProperty("revision").GetString());
        Assert.True(releases[0].GetProperty("current").GetBoolean());
        Assert.Equal("active", releases[0].GetProperty("status").GetString());
        Assert.True(releases[1].GetProperty("rollback_target").GetBoolean());

        var rollback = await Run("rollback", "--json");
        Assert.Equal(0, rollback.ExitCode);
        var rolled = JsonDocument.Parse(rollback.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement;
        Assert.Equal(firstId, rolled.GetProperty("release").GetString());

        var status = JsonDocument.Parse((await Run("status", "--json")).Stdout).RootElement;
        Assert.Equal(firstId, status.GetProperty("current").GetProperty("id").GetString());
        Assert.Equal("rollback", status.GetProperty("last_action").GetProperty("action").GetString());
        Assert.Equal(JsonValueKind.Null, status.GetProperty("rollback_target").ValueKind);
    }

    /// <summary>
    /// A fleet deployer reads each host's `status|releases|rollback --json` with the records the commands write them
    /// with (FleetCommands): what the real binary prints must read back whole, the error line included.
    /// </summary>
    [Fact]
    public async Task What_json_prints_reads_back_with_the_records_a_fleet_deployer_uses()
    {
        AppFactory.WriteConfig(_dir.Path, _root);
        var first = await Run("deploy", _source, "--revision", "abc1234", "--json");
        var deployed = ProgressStream<DeployResultEvent>.TryRead(first.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1], out var problem);
        var firstId = Assert.IsType<DeployResultEvent>(deployed, exactMatch: true).Release;
        Assert.True(problem == "", problem);
        AppFactory.WriteHelloPhp(_source, "2.0.0");
        Assert.Equal(0, (await Run("deploy", _source, "--revision", "def5678")).ExitCode);

        var releases = Json.TryRead<List<ReleaseView>>((await Run("releases", "--json")).Stdout, out problem);
        Assert.True(releases is not null, problem);
        Assert.Equal(["def5678", "abc1234"], releases.Select(r => r.Revision));
        Assert.True(releases[0].Current);
        Assert.True(releases[1].RollbackTarget);

        var host = new FleetHost("web1", "127.0.0.1", 22, "deploy", _root);
        var rollback = await Run("rollback", "--json");
        var rolled = FleetCommands.HostRollbackOf(new HostCommandResult(host, rollback.ExitCode, rollback.Stdout, null));
        Assert.True(rolled.Ok, rolled.Error);
        Assert.Equal(releases[0].Id, rolled.From);
        Assert.Equal(firstId, rolled.Release);

        var status = Json.TryRead<StatusReport>((await Run("status", "--json")).Stdout, out problem);
        Assert.True(status is not null, problem);
        Assert.Equal(firstId, status.Current!.Id);
        Assert.Equal("rollback", status.LastAction!.Action);
        Assert.Null(status.RollbackTarget);
        Assert.Equal(2, status.Releases);

        // FleetCommand gives a failed command's first output lines as its error: here, the JSON error line itself.
        var refused = await Run("rollback", "--json", "20200101_000000");
        var failed = FleetCommands.HostRollbackOf(new HostCommandResult(host, refused.ExitCode, refused.Stdout, refused.Stdout.Trim()));
        Assert.False(failed.Ok);
        Assert.Contains("20200101_000000", failed.Error);
        Assert.DoesNotContain("\"event\"", failed.Error);
    }

    [Fact]
    public async Task Plain_output_shows_each_phase_with_its_time_and_the_table_marks_current()
    {
        AppFactory.WriteConfig(_dir.Path, _root, "hooks:\n  build: [\"echo building\"]\n");
        var deploy = await Run("deploy", _source, "--revision", "abc1234");
        foreach (var phase in new[] { "stage", "shared", "build", "switch", "prune" })
            Assert.Matches($@"(?m)^{phase}: done in \d+\.\d+s", deploy.Stdout);
        Assert.Contains("[build] building", deploy.Stdout);
        Assert.Matches(@"deployed shop release \d{8}_\d{6}", deploy.Stdout);

        var releases = await Run("releases");
        Assert.Contains("abc1234", releases.Stdout);
        Assert.Contains("current", releases.Stdout);
        var status = await Run("status");
        Assert.Contains("current", status.Stdout);
        Assert.Contains("abc1234", status.Stdout);
    }

    [Fact]
    public async Task A_failed_deploy_exits_1_and_says_the_old_release_is_still_live()
    {
        AppFactory.WriteConfig(_dir.Path, _root);
        var good = await Run("deploy", _source, "--json");
        var goodId = JsonDocument.Parse(good.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement.GetProperty("release").GetString();
        AppFactory.WriteConfig(_dir.Path, _root, "hooks:\n  before_switch: [\"exit 3\"]\n");
        var bad = await Run("deploy", _source);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains($"{goodId} is still live", bad.Stderr);
        Assert.Contains("exited with code 3", bad.Stderr);
    }

    [Fact]
    public async Task A_second_deploy_fails_at_once_naming_the_holder_or_waits_with_lock_wait()
    {
        // The first deploy holds the lock until the test lets it go (bounded: 60 s at most), so a slow machine
        // cannot let it finish before the second deploy and the status have looked.
        var go = _dir.Combine("go");
        AppFactory.WriteConfig(_dir.Path, _root, $"hooks:\n  build: [\"i=0; while [ ! -e {go} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\"]\n");
        var slow = CutoverCli.Start(_dir.Path, _ => { }, "deploy", _source);
        try
        {
            await Wait.UntilAsync(() => File.Exists(Path.Combine(_root, ".cutover", "deploy.lock.json")), TimeSpan.FromSeconds(30), "the slow deploy to take the lock", TimeSpan.FromMilliseconds(20));

            var clock = Stopwatch.StartNew();
            var refused = await Run("deploy", _source);
            Assert.Equal(3, refused.ExitCode);
            Assert.Contains($"pid {slow.Id}", refused.Stderr);
            Assert.Contains("running `cutover deploy", refused.Stderr);
            Assert.Contains("--lock-wait", refused.Stderr);

            var status = await Run("status", "--json");
            Assert.Equal(slow.Id, JsonDocument.Parse(status.Stdout).RootElement.GetProperty("locked_by").GetProperty("pid").GetInt32());

            var waiting = Run("deploy", _source, "--lock-wait", "60s");
            await Task.Delay(300); // the second deploy's start, so it finds the lock held; its waiting shows nowhere outside it
            File.WriteAllText(go, "");
            var waited = await waiting;
            Assert.True(waited.ExitCode == 0, waited.All);
            Assert.True(slow.HasExited);
        }
        finally
        {
            if (!slow.HasExited) slow.Kill();
            slow.Dispose();
        }
    }

    [Fact]
    public async Task Deploying_a_tarball_works_and_a_bad_one_exits_2()
    {
        AppFactory.WriteConfig(_dir.Path, _root);
        var tarball = _dir.Combine("app.tar.gz");
        using (var tar = Process.Start("tar", ["-czf", tarball, "-C", _source, "."])) await tar.WaitForExitAsync();
        var good = await Run("deploy", tarball);
        Assert.True(good.ExitCode == 0, good.All);
        Assert.Equal("1.0.0", File.ReadAllText(Path.Combine(_root, "current", "VERSION")).Trim());

        var missing = await Run("deploy", _dir.Combine("nope.tar.gz"));
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("does not exist", missing.Stderr);
        var badDuration = await Run("deploy", _source, "--lock-wait", "soon");
        Assert.Equal(2, badDuration.ExitCode);
        Assert.Contains("--lock-wait", badDuration.Stderr);
    }

    [Fact]
    public async Task Rollback_finishes_in_well_under_a_second()
    {
        // A correctness bound, generous for a loaded CI machine; bench/ has the measured number.
        AppFactory.WriteConfig(_dir.Path, _root);
        Assert.Equal(0, (await Run("deploy", _source)).ExitCode);
        AppFactory.WriteHelloPhp(_source, "2.0.0");
        Assert.Equal(0, (await Run("deploy", _source)).ExitCode);
        var rollback = await Run("rollback", "--json");
        Assert.Equal(0, rollback.ExitCode);
        var seconds = JsonDocument.Parse(rollback.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement
            .GetProperty("phase_seconds").GetProperty("switch").GetDouble();
        Assert.True(seconds < 1, $"the switch took {seconds}s");
        Assert.Equal("1.0.0", File.ReadAllText(Path.Combine(_root, "current", "VERSION")).Trim());
    }

    [Fact]
    public async Task The_demo_deploys_twice_rolls_back_and_checks_itself()
    {
        // As on a machine where the default metrics address is taken (another agent, an OpenTelemetry exporter): the
        // demo's own agent must not need it. The tests' agents run with metrics off; this one gets the default.
        using var holder = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 9464);
        try { holder.Start(); } catch (System.Net.Sockets.SocketException) { /* already taken: the same condition */ }
        var result = await CutoverCli.RunAsync(_dir.Path,
            new Dictionary<string, string> { [Cutover.Metrics.MetricsAddress.Variable] = Cutover.Metrics.MetricsAddress.Default },
            "demo", "--dir", _dir.Combine("demo"));
        Assert.True(result.ExitCode == 0, result.All);
        Assert.Contains("3 shared with earlier releases", result.Stdout);
        Assert.Contains("VERSION 1.0.0", result.Stdout);
    }

    [Fact]
    public async Task Verbose_diagnostics_go_to_stderr_and_leave_json_on_stdout_clean()
    {
        AppFactory.WriteConfig(_dir.Path, _root);
        var result = await Run("deploy", _source, "--json", "--verbose");
        Assert.Equal(0, result.ExitCode);
        Assert.Contains("recovering from any interrupted deploy", result.Stderr);
        Assert.Contains("prune:", result.Stderr);
        foreach (var line in result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            JsonDocument.Parse(line).Dispose();
    }
}
