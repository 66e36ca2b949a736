// Docker.DotNet's models make every field nullable; a missing one here fails the test anyway.
#nullable disable warnings
using System.Diagnostics;
using System.Text.Json;
using Cutover.Deploy;
using Cutover.Releases;
using Cutover.Swarm;
using Cutover.Tests.Migrations;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Swarm;

/// <summary>
/// strategy: swarm goes through the pipeline of the other strategies: migrations and before_switch before the service
/// update, after_switch after it, and a failure or a signal after the update began takes the service back to the last
/// good release's image and runs after_rollback. Real dockerd in swarm mode, real PostgreSQL, the real binary.
/// </summary>
[Collection(SwarmCollection.Name)]
public class SwarmPipelineTests(SwarmFixture swarm, PostgresFixture postgres, ITestOutputHelper output) : IClassFixture<PostgresFixture>
{

    /// <summary>Top-level keys after the swarm section WriteConfig wrote.</summary>
    private static void Append(string config, string yaml) => File.AppendAllText(config, "\n" + yaml);

    private static DateTime FromUnixNanoseconds(string ns) => DateTime.UnixEpoch.AddTicks(long.Parse(ns) / 100);

    [Fact]
    public async Task Migrations_and_before_switch_run_before_the_new_tasks_are_created_and_after_switch_once_they_run()
    {
        const string service = "pipe-order";
        using var dir = new TempDir();
        var db = await postgres.Server.CreateDatabaseAsync();
        Directory.CreateDirectory(dir.Combine("db", "migrations"));
        File.WriteAllText(dir.Combine("db", "migrations", "0001_orders.sql"), "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric);");
        var config = swarm.WriteConfig(dir, service, replicas: 1);
        var before = dir.Combine("before_switch.txt");
        var after = dir.Combine("after_switch.txt");
        Append(config, $"""
            migrations:
              dir: db/migrations
              database_url_env: SHOP_DB
            hooks:
              before_switch: ['echo "$(date +%s%N) $(pwd) $(cat image) $CUTOVER_RELEASE_ID" > {before}']
              after_switch: ['date +%s%N > {after}']
            """);
        try
        {
            var deployer = swarm.Deployer(SwarmFixture.Load(config), new RecordingProgress(output), environment: name => name == "SHOP_DB" ? db : null);
            var result = await deployer.DeployAsync(new DeployRequest("", null, TimeSpan.FromSeconds(10), "test") { Image = "app:v1" }, SwarmUpdateTests.Soon());
            Assert.True(result.Succeeded, result.Error);

            var task = Assert.Single(await swarm.TasksAsync(service), t => SwarmUpdateTests.Release(t) == result.Release);
            var applied = await PostgresServer.ScalarAsync<DateTime>(db, "SELECT applied_at FROM cutover_migrations WHERE name = '0001_orders.sql'");
            Assert.Equal(0L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM orders"));
            var hook = File.ReadAllText(before).Trim().Split(' ');
            var beforeSwitchAt = FromUnixNanoseconds(hook[0]);
            var afterSwitchAt = FromUnixNanoseconds(File.ReadAllText(after).Trim());
            output.WriteLine($"migration {applied:O}, before_switch {beforeSwitchAt:O}, task created {task.CreatedAt:O}, running {task.Status.Timestamp:O}, after_switch {afterSwitchAt:O}");
            Assert.True(applied.ToUniversalTime() < task.CreatedAt, "the migration was applied after the new task was created");
            Assert.True(beforeSwitchAt < task.CreatedAt, "before_switch ran after the new task was created");
            Assert.True(afterSwitchAt > task.Status.Timestamp, "after_switch ran before the new task was running");
            // The hook ran in the release's directory, which holds the image file, with the usual environment.
            var releaseDir = Path.Combine(dir.Combine(".cutover-swarm", service), "releases", result.Release);
            Assert.Equal((releaseDir, "app:v1", result.Release), (hook[1], hook[2], hook[3]));

            var record = new ReleaseStore(new RootLayout(dir.Combine(".cutover-swarm", service))).Find(ReleaseId.Parse(result.Release));
            Assert.Equal(["0001_orders.sql"], record.Migrations);
        }
        finally
        {
            await swarm.RemoveServiceAsync(service);
        }
    }

    [Fact]
    public async Task A_failing_migration_stops_the_deploy_before_the_service_update_and_the_old_tasks_keep_running()
    {
        const string service = "pipe-migfail";
        using var dir = new TempDir();
        var db = await postgres.Server.CreateDatabaseAsync();
        var config = swarm.WriteConfig(dir, service, replicas: 1);
        var request = (string image) => new DeployRequest("", null, TimeSpan.FromSeconds(10), "test") { Image = image };
        try
        {
            var v1 = await swarm.Deployer(SwarmFixture.Load(config), new RecordingProgress(output)).DeployAsync(request("app:v1"), SwarmUpdateTests.Soon());
            Assert.True(v1.Succeeded, v1.Error);
            var tasksBefore = (await swarm.TasksAsync(service)).Select(t => t.ID).Order().ToList();

            Directory.CreateDirectory(dir.Combine("db", "migrations"));
            File.WriteAllText(dir.Combine("db", "migrations", "0001_broken.sql"), "ALTER TABLE no_such_table ADD COLUMN email text;");
            Append(config, "migrations:\n  dir: db/migrations\n  database_url_env: SHOP_DB\n");
            var v2 = await swarm.Deployer(SwarmFixture.Load(config), new RecordingProgress(output), environment: name => name == "SHOP_DB" ? db : null)
                .DeployAsync(request("app:v2"), SwarmUpdateTests.Soon());

            Assert.Equal(DeployOutcome.Failed, v2.Outcome);
            Assert.Contains("migration failed", v2.Error);
            Assert.DoesNotContain("swarm", v2.PhaseSeconds.Keys);
            // Not a task was replaced: the service was never updated.
            Assert.Equal(tasksBefore, (await swarm.TasksAsync(service)).Select(t => t.ID).Order().ToList());
            await new SwarmUpdateTests(swarm, output).AssertRunsAsync(service, "app:v1", 1);
            var store = new ReleaseStore(new RootLayout(dir.Combine(".cutover-swarm", service)));
            Assert.Equal(ReleaseStatus.Failed, store.Find(ReleaseId.Parse(v2.Release)).Status);
            Assert.Equal(v1.Release, new CurrentLink(new RootLayout(dir.Combine(".cutover-swarm", service))).Read()?.Value);
        }
        finally
        {
            await swarm.RemoveServiceAsync(service);
        }
    }

    [Fact]
    public async Task A_failing_after_switch_hook_updates_the_service_back_to_the_last_good_image_and_runs_after_rollback()
    {
        const string service = "pipe-undo";
        using var dir = new TempDir();
        var marker = dir.Combine("after_rollback.txt");
        var config = swarm.WriteConfig(dir, service, replicas: 2);
        Append(config, $"hooks:\n  after_rollback: ['echo \"$CUTOVER_RELEASE_ID $(cat image)\" > {marker}']\n");
        try
        {
            var v1 = await Cli(dir, "deploy", "--image", "app:v1", "--json");
            Assert.Equal(0, v1.ExitCode);
            var v1Id = JsonSerializer.Deserialize<JsonElement>(v1.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).GetProperty("release").GetString();

            swarm.WriteConfig(dir, service, replicas: 2);
            Append(config, $"hooks:\n  after_switch: ['exit 3']\n  after_rollback: ['echo \"$CUTOVER_RELEASE_ID $(cat image)\" > {marker}']\n");
            var v2 = await Cli(dir, "deploy", "--image", "app:v2");
            Assert.Equal(1, v2.ExitCode);
            Assert.Contains("after_switch hook failed", v2.Stderr);
            await new SwarmUpdateTests(swarm, output).AssertRunsAsync(service, "app:v1", 2);
            Assert.Equal($"{v1Id} app:v1", File.ReadAllText(marker).Trim());

            var releases = JsonSerializer.Deserialize<JsonElement>((await Cli(dir, "releases", "--json")).Stdout);
            var statuses = releases.EnumerateArray().Select(r => (r.GetProperty("image").GetString(), r.GetProperty("status").GetString())).ToList();
            Assert.Equal([("app:v2", "failed"), ("app:v1", "active")], statuses);
            Assert.Equal("app:v1", JsonSerializer.Deserialize<JsonElement>((await Cli(dir, "status", "--json")).Stdout).GetProperty("swarm").GetProperty("image").GetString());
            Assert.Equal("rolled_back", ReadHistory(dir, service)[^1]);
        }
        finally
        {
            await swarm.RemoveServiceAsync(service);
        }
    }

    [Theory]
    [InlineData(2)]
    [InlineData(15)]
    public async Task A_signal_during_the_service_update_puts_the_last_good_image_back_runs_after_rollback_and_records_cancelled(int signal)
    {
        var service = $"pipe-sig{signal}";
        using var dir = new TempDir();
        var marker = dir.Combine("after_rollback.txt");
        var config = swarm.WriteConfig(dir, service, replicas: 2);
        Append(config, $"hooks:\n  after_rollback: ['echo \"$CUTOVER_RELEASE_ID\" > {marker}']\n");
        try
        {
            Assert.Equal(0, (await Cli(dir, "deploy", "--image", "app:v1")).ExitCode);

            var lines = new System.Collections.Concurrent.ConcurrentQueue<string>();
            using var cli = CutoverCli.Start(dir.Path, lines.Enqueue, "deploy", "--image", "app:v2");
            var waited = Stopwatch.StartNew();
            while (!lines.Any(l => l.Contains("updating service")))
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), "the update never began:\n" + string.Join("\n", lines));
                await Task.Delay(20);
            }
            Cutover.Platform.LibC.Kill(cli.Id, signal);
            using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            await cli.WaitForExitAsync(limit.Token);
            output.WriteLine(string.Join("\n", lines));

            Assert.Equal(130, cli.ExitCode);
            await new SwarmUpdateTests(swarm, output).AssertRunsAsync(service, "app:v1", 2);
            var releases = JsonSerializer.Deserialize<JsonElement>((await Cli(dir, "releases", "--json")).Stdout);
            var statuses = releases.EnumerateArray().Select(r => (r.GetProperty("image").GetString(), r.GetProperty("status").GetString())).ToList();
            Assert.Equal([("app:v2", "cancelled"), ("app:v1", "active")], statuses);
            Assert.Equal(releases[1].GetProperty("id").GetString(), File.ReadAllText(marker).Trim());
            Assert.Equal("cancelled", ReadHistory(dir, service)[^1]);
        }
        finally
        {
            await swarm.RemoveServiceAsync(service);
        }
    }

    [Fact]
    public async Task Build_hooks_with_strategy_swarm_are_a_config_error_naming_the_strategies_that_run_them()
    {
        const string service = "pipe-build";
        using var dir = new TempDir();
        var config = swarm.WriteConfig(dir, service, replicas: 1);
        Append(config, "hooks:\n  build: ['npm ci']\n  before_switch: ['true']\n");
        var result = await Cli(dir, "deploy", "--image", "app:v1");
        Assert.Equal(2, result.ExitCode);
        Assert.Matches(@"cutover\.yml:\d+:\d+: hooks\.build: not used by strategy: swarm \(used by: symlink, rolling, blue-green\)", result.Stderr);
        Assert.Null(await SwarmServiceUpdater.InspectAsync(swarm.Client(), service, CancellationToken.None));
        Assert.False(Directory.Exists(dir.Combine(".cutover-swarm", service, "releases")), "a refused config wrote a release");
    }

    private static List<string> ReadHistory(TempDir dir, string service) =>
        new History.HistoryLog(new RootLayout(dir.Combine(".cutover-swarm", service))).Read().Select(e => e.Outcome).ToList();

    private async Task<CliResult> Cli(TempDir dir, params string[] args)
    {
        var result = await CutoverCli.RunAsync(dir.Path, args);
        output.WriteLine($"$ cutover {string.Join(' ', args)} -> {result.ExitCode}\n{result.Stdout}{result.Stderr}");
        return result;
    }
}
