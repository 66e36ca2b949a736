using System.Diagnostics;
using System.Text.Json;
using Cutover.Config;
using Cutover.Deploy;
using Cutover.History;
using Cutover.Progress;
using Cutover.Releases;
using Cutover.Tests.Support;

namespace Cutover.Tests.Deploy;

public class ReleaseDeployerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly HttpClient _http = new();
    private readonly string _root;
    private readonly string _source;

    public ReleaseDeployerTests()
    {
        _root = _dir.Combine("root");
        _source = _dir.Combine("src");
    }

    public void Dispose()
    {
        _http.Dispose();
        _dir.Dispose();
    }

    private DeployPipeline Deployer(string extra = "") =>
        new(ConfigLoader.Load(AppFactory.WriteConfig(_dir.Path, _root, extra)), new SilentProgress(), _http);

    private async Task<DeployResult> Deploy(string version, string extra = "", string? revision = null, bool unhealthy = false)
    {
        AppFactory.WriteHelloPhp(_source, version, unhealthy);
        return await Deployer(extra).DeployAsync(new DeployRequest(_source, revision ?? "rev-" + version, TimeSpan.Zero, "test"), CancellationToken.None);
    }

    private string CurrentVersion => File.ReadAllText(Path.Combine(_root, "current", "VERSION")).Trim();
    private string? CurrentId => new FileInfo(Path.Combine(_root, "current")).LinkTarget?.Replace("releases/", "");
    private ReleaseStore Store => new(new RootLayout(_root));

    [Fact]
    public async Task Deploy_lays_out_releases_shared_and_current_as_the_classic_recipe()
    {
        var result = await Deploy("1.0.0", "shared:\n  dirs: [storage]\n");
        Assert.True(result.Succeeded, result.Error);
        Assert.Equal("releases/" + result.Release, new FileInfo(Path.Combine(_root, "current")).LinkTarget);
        Assert.True(Directory.Exists(Path.Combine(_root, "releases", result.Release, "public")));
        Assert.True(Directory.Exists(Path.Combine(_root, "shared", "storage")));
        Assert.Equal("1.0.0", CurrentVersion);
        var record = Store.Find(ReleaseId.Parse(result.Release))!;
        Assert.Equal(ReleaseStatus.Active, record.Status);
        Assert.Equal("rev-1.0.0", record.Revision);
    }

    [Fact]
    public async Task The_revision_is_the_source_git_commit_when_none_is_given()
    {
        AppFactory.WriteHelloPhp(_source, "1.0.0");
        static void Git(string dir, params string[] args)
        {
            var start = new ProcessStartInfo("git") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var a in new[] { "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false" }.Concat(args)) start.ArgumentList.Add(a);
            using var p = Process.Start(start)!;
            p.WaitForExit();
            Assert.Equal(0, p.ExitCode);
        }
        Git(_source, "init", "-q");
        Git(_source, "add", "-A");
        Git(_source, "commit", "-qm", "v1");
        var head = new ProcessStartInfo("git", "rev-parse HEAD") { WorkingDirectory = _source, RedirectStandardOutput = true };
        using var p = Process.Start(head)!;
        var sha = p.StandardOutput.ReadToEnd().Trim();

        var result = await Deployer().DeployAsync(new DeployRequest(_source, null, TimeSpan.Zero, "test"), CancellationToken.None);
        Assert.Equal(sha, result.Revision);
        Assert.False(Directory.Exists(Path.Combine(_root, "releases", result.Release, ".git")));
    }

    [Fact]
    public async Task Hooks_run_in_order_in_the_release_dir_with_the_documented_environment()
    {
        var first = await Deploy("1.0.0");
        var hooks = """
            hooks:
              build: ["pwd > hook-pwd", "env | grep ^CUTOVER_ | sort > hook-env", "echo one >> hook-order"]
              before_switch: ["echo two >> hook-order"]
              after_switch: ["echo three >> $CUTOVER_RELEASE_DIR/hook-order"]
            """;
        var second = await Deploy("2.0.0", hooks);
        Assert.True(second.Succeeded, second.Error);
        var dir = Path.Combine(_root, "releases", second.Release);
        Assert.Equal(dir, File.ReadAllText(Path.Combine(dir, "hook-pwd")).Trim());
        Assert.Equal(["one", "two", "three"], File.ReadAllLines(Path.Combine(dir, "hook-order")));
        var env = File.ReadAllLines(Path.Combine(dir, "hook-env"));
        Assert.Contains("CUTOVER_APP=shop", env);
        Assert.Contains($"CUTOVER_ROOT={_root}", env);
        Assert.Contains($"CUTOVER_RELEASE_ID={second.Release}", env);
        Assert.Contains($"CUTOVER_RELEASE_DIR={dir}", env);
        Assert.Contains($"CUTOVER_PREVIOUS_RELEASE_DIR={Path.Combine(_root, "releases", first.Release)}", env);
        var log = File.ReadAllText(Path.Combine(_root, ".cutover", "logs", second.Release + ".log"));
        Assert.Contains("[build] $ echo one >> hook-order", log);
    }

    [Theory]
    [InlineData("build")]
    [InlineData("before_switch")]
    public async Task A_failing_hook_before_the_switch_leaves_current_untouched(string stage)
    {
        var good = await Deploy("1.0.0");
        var bad = await Deploy("2.0.0", $"hooks:\n  {stage}: [\"echo about to fail\", \"exit 7\"]\n");
        Assert.Equal(DeployOutcome.Failed, bad.Outcome);
        Assert.Contains("exited with code 7", bad.Error);
        Assert.Equal(good.Release, CurrentId);
        Assert.Equal("1.0.0", CurrentVersion);
        Assert.Equal(ReleaseStatus.Failed, Store.Find(ReleaseId.Parse(bad.Release))!.Status);
        var last = new HistoryLog(new RootLayout(_root)).Read()[^1];
        Assert.Equal("failed", last.Outcome);
        Assert.Equal(bad.Release, last.Release);
    }

    [Fact]
    public async Task A_hook_that_overruns_its_timeout_is_killed_and_fails_the_deploy()
    {
        await Deploy("1.0.0");
        var clock = Stopwatch.StartNew();
        var bad = await Deploy("2.0.0", "hooks:\n  timeout: 300ms\n  build: [\"sleep 30\"]\n");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20));
        Assert.Equal(DeployOutcome.Failed, bad.Outcome);
        Assert.Contains("timed out after 300ms", bad.Error);
        Assert.Equal("1.0.0", CurrentVersion);
    }

    [Fact]
    public async Task A_failing_health_check_switches_back_by_itself_and_runs_after_rollback()
    {
        using var server = new HealthServer(() =>
            File.Exists(Path.Combine(_root, "current", "UNHEALTHY")) ? 503 : 200);
        var health = $"health:\n  url: {server.Url}\n  interval: 50ms\n  retries: 3\n  timeout: 1s\n" +
                     "hooks:\n  after_rollback: [\"echo $CUTOVER_RELEASE_ID > $CUTOVER_ROOT/rolled-back-to\"]\n";
        var good = await Deploy("1.0.0", health);
        Assert.True(good.Succeeded, good.Error);
        var requestsBefore = server.Requests;

        var bad = await Deploy("2.0.0", health, unhealthy: true);

        Assert.Equal(DeployOutcome.RolledBack, bad.Outcome);
        Assert.Contains("health check failed after 3 attempts", bad.Error);
        Assert.Contains("answered 503", bad.Error);
        Assert.Contains($"switched back to {good.Release}", bad.Error);
        Assert.Equal(3, server.Requests - requestsBefore);
        Assert.Equal(good.Release, CurrentId);
        Assert.Equal(good.Release, File.ReadAllText(Path.Combine(_root, "rolled-back-to")).Trim());
        Assert.Equal(ReleaseStatus.Failed, Store.Find(ReleaseId.Parse(bad.Release))!.Status);
        Assert.Equal("rolled_back", new HistoryLog(new RootLayout(_root)).Read()[^1].Outcome);
    }

    [Fact]
    public async Task A_failing_after_switch_hook_also_switches_back()
    {
        var good = await Deploy("1.0.0");
        var bad = await Deploy("2.0.0", "hooks:\n  after_switch: [\"false\"]\n");
        Assert.Equal(DeployOutcome.RolledBack, bad.Outcome);
        Assert.Equal(good.Release, CurrentId);
    }

    [Fact]
    public async Task Rollback_goes_one_further_back_each_time_and_marks_what_it_left()
    {
        var r1 = await Deploy("1.0.0");
        var r2 = await Deploy("2.0.0");
        var r3 = await Deploy("3.0.0");
        var deployer = Deployer("hooks:\n  after_rollback: [\"echo $CUTOVER_RELEASE_ID:$(basename $CUTOVER_PREVIOUS_RELEASE_DIR) >> $CUTOVER_ROOT/rollbacks\"]\n");

        var clock = Stopwatch.StartNew();
        var back1 = await deployer.RollbackAsync(new RollbackRequest(null, TimeSpan.Zero, "test"), CancellationToken.None);
        Assert.Equal(r2.Release, back1.To);
        Assert.Equal("2.0.0", CurrentVersion);
        Assert.Equal(ReleaseStatus.RolledBack, Store.Find(ReleaseId.Parse(r3.Release))!.Status);

        var back2 = await deployer.RollbackAsync(new RollbackRequest(null, TimeSpan.Zero, "test"), CancellationToken.None);
        Assert.Equal(r1.Release, back2.To);
        Assert.Equal("1.0.0", CurrentVersion);

        await Assert.ThrowsAsync<DeployException>(() => deployer.RollbackAsync(new RollbackRequest(null, TimeSpan.Zero, "test"), CancellationToken.None));

        var forward = await deployer.RollbackAsync(new RollbackRequest(r3.Release, TimeSpan.Zero, "test"), CancellationToken.None);
        Assert.Equal(r3.Release, forward.To);
        Assert.Equal("3.0.0", CurrentVersion);
        Assert.Equal([$"{r2.Release}:{r3.Release}", $"{r1.Release}:{r2.Release}", $"{r3.Release}:{r1.Release}"],
            File.ReadAllLines(Path.Combine(_root, "rollbacks")));
        var history = new HistoryLog(new RootLayout(_root)).Read();
        Assert.Equal(3, history.Count(h => h.Action == "rollback"));
    }

    [Fact]
    public async Task Rollback_to_a_failed_or_unknown_release_is_refused_and_changes_nothing()
    {
        var good = await Deploy("1.0.0");
        var bad = await Deploy("2.0.0", "hooks:\n  build: [\"false\"]\n");
        var deployer = Deployer();
        // Bad input (exit 2): the release named cannot be switched to.
        DeployException e = await Assert.ThrowsAsync<InputException>(() => deployer.RollbackAsync(new RollbackRequest(bad.Release, TimeSpan.Zero, "t"), CancellationToken.None));
        Assert.Contains("failed", e.Message);
        e = await Assert.ThrowsAsync<InputException>(() => deployer.RollbackAsync(new RollbackRequest("20990101_000000", TimeSpan.Zero, "t"), CancellationToken.None));
        Assert.Contains("does not exist", e.Message);
        Assert.Equal(good.Release, CurrentId);
    }

    [Fact]
    public async Task Pruning_keeps_keep_releases_successful_ones_and_removes_failed_ones()
    {
        var extra = "keep_releases: 2\n";
        var ids = new List<string>();
        for (var i = 1; i <= 4; i++) ids.Add((await Deploy($"{i}.0.0", extra)).Release);
        var failed = await Deploy("5.0.0", extra + "hooks:\n  build: [\"false\"]\n");
        var last = await Deploy("6.0.0", extra);

        var remaining = Directory.GetDirectories(Path.Combine(_root, "releases")).Select(Path.GetFileName).Order().ToList();
        Assert.Equal([ids[3], last.Release], remaining);
        Assert.DoesNotContain(failed.Release, remaining);
        Assert.False(File.Exists(Path.Combine(_root, ".cutover", "releases", ids[0] + ".json")));
        Assert.Contains(failed.Release, last.Pruned);
    }

    [Fact]
    public async Task History_records_every_deploy_with_phase_durations()
    {
        await Deploy("1.0.0");
        await Deploy("2.0.0", "hooks:\n  build: [\"true\"]\n");
        var lines = File.ReadAllLines(Path.Combine(_root, ".cutover", "history.jsonl"));
        Assert.Equal(2, lines.Length);
        using var doc = JsonDocument.Parse(lines[1]);
        var root = doc.RootElement;
        Assert.Equal("deploy", root.GetProperty("action").GetString());
        Assert.Equal("success", root.GetProperty("outcome").GetString());
        Assert.Equal("rev-2.0.0", root.GetProperty("revision").GetString());
        Assert.Equal(Environment.UserName, root.GetProperty("user").GetString());
        Assert.True(root.GetProperty("finished").GetDateTimeOffset() >= root.GetProperty("started").GetDateTimeOffset());
        var phases = root.GetProperty("phase_seconds");
        foreach (var phase in new[] { "stage", "shared", "build", "switch", "prune" })
            Assert.True(phases.TryGetProperty(phase, out _), phase);
    }

    [Fact]
    public async Task A_real_directory_at_current_is_refused_before_anything_is_written()
    {
        Directory.CreateDirectory(Path.Combine(_root, "current"));
        File.WriteAllText(Path.Combine(_root, "current", "index.html"), "hand-made");
        var e = await Assert.ThrowsAsync<InputException>(() => Deploy("1.0.0"));
        Assert.Contains("is a real directory", e.Message);
        Assert.Equal("hand-made", File.ReadAllText(Path.Combine(_root, "current", "index.html")));
        Assert.Equal(["current"], Directory.GetFileSystemEntries(_root).Select(Path.GetFileName));
    }

    [Fact]
    public async Task A_missing_source_or_unwritable_root_is_a_clear_error()
    {
        var e = await Assert.ThrowsAsync<Cutover.Staging.ArtifactException>(() =>
            Deployer().DeployAsync(new DeployRequest(_dir.Combine("nope"), null, TimeSpan.Zero, "t"), CancellationToken.None));
        Assert.Contains("does not exist", e.Message);

        File.WriteAllText(_dir.Combine("file-root"), "");
        AppFactory.WriteHelloPhp(_source, "1");
        var config = ConfigLoader.Load(AppFactory.WriteConfig(_dir.Path, _dir.Combine("file-root", "sub")));
        var e2 = await Assert.ThrowsAsync<DeployException>(() =>
            new DeployPipeline(config, new SilentProgress(), _http).DeployAsync(new DeployRequest(_source, null, TimeSpan.Zero, "t"), CancellationToken.None));
        Assert.Contains("cannot be written", e2.Message);
    }

    [Fact]
    public async Task An_unsafe_tarball_changes_nothing_and_the_live_release_keeps_serving()
    {
        var good = await Deploy("1.0.0");
        var tarball = _dir.Combine("evil.tar.gz");
        using (var file = File.Create(tarball))
        using (var gzip = new System.IO.Compression.GZipStream(file, System.IO.Compression.CompressionLevel.Fastest))
        using (var writer = new System.Formats.Tar.TarWriter(gzip))
            writer.WriteEntry(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "../../evil.php") { DataStream = new MemoryStream([1]) });
        var e = await Assert.ThrowsAsync<Cutover.Staging.ArtifactException>(() =>
            Deployer().DeployAsync(new DeployRequest(tarball, null, TimeSpan.Zero, "t"), CancellationToken.None));
        Assert.Contains("'..'", e.Message);
        Assert.Equal(good.Release, CurrentId);
        Assert.Equal([good.Release], Directory.GetDirectories(Path.Combine(_root, "releases")).Select(Path.GetFileName));
        Assert.Single(Store.List());
        Assert.False(File.Exists(Path.Combine(_root, "evil.php")));
    }

    [Fact]
    public async Task A_source_that_contains_the_root_is_refused_before_anything_is_written()
    {
        AppFactory.WriteHelloPhp(_source, "1.0.0");
        var inside = Path.Combine(_source, "deploy");
        var config = ConfigLoader.Load(AppFactory.WriteConfig(_dir.Path, inside));
        var e = await Assert.ThrowsAsync<Cutover.Staging.ArtifactException>(() =>
            new DeployPipeline(config, new SilentProgress(), _http).DeployAsync(new DeployRequest(_source, null, TimeSpan.Zero, "t"), CancellationToken.None));
        Assert.Contains("contains the deploy root", e.Message);
        Assert.False(Directory.Exists(inside));
    }
}
