// Docker.DotNet's models make every field nullable; a missing one here fails the test anyway.
#nullable disable warnings
using Cutover.Config;
using Cutover.Deploy;
using Cutover.Swarm;
using Cutover.Tests.Support;
using Docker.DotNet.Models;
using Xunit.Abstractions;

namespace Cutover.Tests.Swarm;

/// <summary>
/// Updates on a real single-node Swarm, checked from the tasks' own timestamps as the manager recorded them (the
/// routing mesh needs IPVS, which this kernel may lack, so no traffic goes through Swarm here).
/// </summary>
[Collection(SwarmCollection.Name)]
[Trait(Needs.Trait, Needs.Docker)]
public class SwarmUpdateTests(SwarmFixture swarm, ITestOutputHelper output)
{
    /// <summary>A hang fails the test in 90 s instead of holding CI: every deploy here takes well under 30 s.</summary>
    internal static CancellationToken Soon() => new CancellationTokenSource(TimeSpan.FromSeconds(90)).Token;

    private static DeployRequest Image(string image) => new("", null, TimeSpan.FromSeconds(10), "test") { Image = image };

    [Theory]
    [InlineData("start-first")]
    [InlineData("stop-first")]
    public async Task An_update_converges_one_slot_at_a_time_in_the_configured_order(string order)
    {
        var service = "upd-" + order.Split('-')[0];
        using var dir = new TempDir();
        var config = SwarmFixture.Load(swarm.WriteConfig(dir, service, replicas: 3, order: order));
        var progress = new RecordingProgress(output);
        try
        {
            var first = await swarm.Deployer(config, progress).DeployAsync(Image("app:v1"), Soon());
            Assert.True(first.Succeeded, first.Error);
            var second = await swarm.Deployer(config, progress).DeployAsync(Image("app:v2"), Soon());
            Assert.True(second.Succeeded, second.Error);

            var tasks = await swarm.TasksAsync(service);
            var bySlot = tasks.GroupBy(t => t.Slot!.Value).OrderBy(g => g.Key).ToList();
            Assert.Equal(3, bySlot.Count);
            var replacements = new List<(long Slot, TaskResponse Old, TaskResponse New)>();
            foreach (var slot in bySlot)
            {
                var old = Assert.Single(slot, t => Release(t) == first.Release);
                var @new = Assert.Single(slot, t => Release(t) == second.Release);
                Assert.Equal(TaskState.Running, @new.Status.State);
                Assert.Equal(TaskState.Shutdown, old.DesiredState);
                Assert.StartsWith("app:v2", @new.Spec.ContainerSpec.Image);
                replacements.Add((slot.Key, old, @new));
                output.WriteLine($"slot {slot.Key}: new created {T(@new.CreatedAt)} running {T(@new.Status.Timestamp)}; old stopped {T(old.Status.Timestamp)} ({old.Status.State})");
            }

            foreach (var (slot, old, @new) in replacements)
            {
                // Status.Timestamp is the time of a task's latest state: running for the new one, its end for the old one.
                if (order == "start-first")
                    Assert.True(@new.Status.Timestamp < old.Status.Timestamp, $"slot {slot}: the old task stopped before the new one was running");
                else
                    Assert.True(old.Status.Timestamp <= @new.Status.Timestamp, $"slot {slot}: the new task was running before the old one stopped");
            }
            // parallelism 1: the next slot's new task is created only once the previous one runs.
            var inOrder = replacements.OrderBy(r => r.New.CreatedAt).ToList();
            for (var i = 1; i < inOrder.Count; i++)
                Assert.True(inOrder[i].New.CreatedAt >= inOrder[i - 1].New.Status.Timestamp,
                    $"slot {inOrder[i].Slot} was replaced while slot {inOrder[i - 1].Slot} was still being replaced");

            // Progress showed each slot reaching running on the new image.
            foreach (var slot in new[] { 1, 2, 3 })
                Assert.Contains(progress.Lines, l => l.StartsWith($"{slot}/3: running app:v2", StringComparison.Ordinal));
            var status = await SwarmStatus.ReadAsync(config.SettingsOf<SwarmSettings>().Swarm, Soon());
            Assert.Equal(("app:v2", 3, 3, "completed"), (status.Image, status.Running, status.Desired, status.UpdateState));
        }
        finally
        {
            await swarm.RemoveServiceAsync(service);
        }
    }

    [Fact]
    public async Task Cutover_rollback_goes_to_the_previous_good_image_and_to_a_named_release()
    {
        const string service = "rb-core";
        using var dir = new TempDir();
        var config = SwarmFixture.Load(swarm.WriteConfig(dir, service, replicas: 2, network: true));
        var progress = new RecordingProgress(output);
        try
        {
            var v1 = await swarm.Deployer(config, progress).DeployAsync(Image("app:v1"), Soon());
            var v2 = await swarm.Deployer(config, progress).DeployAsync(Image("app:v2"), Soon());
            Assert.True(v1.Succeeded && v2.Succeeded, v1.Error ?? v2.Error);

            var back = await swarm.Deployer(config, progress).RollbackAsync(new RollbackRequest(null, TimeSpan.FromSeconds(10), "test"), Soon());
            Assert.Equal((v2.Release, v1.Release), (back.From, back.To));
            await AssertRunsAsync(service, "app:v1", 2);
            Assert.Equal(["hello from v1", "hello from v1"], await swarm.AnswersAsync(service));

            var forward = await swarm.Deployer(config, progress).RollbackAsync(new RollbackRequest(v2.Release, TimeSpan.FromSeconds(10), "test"), Soon());
            Assert.Equal(v2.Release, forward.To);
            await AssertRunsAsync(service, "app:v2", 2);
            Assert.Equal(["hello from v2", "hello from v2"], await swarm.AnswersAsync(service));
        }
        finally
        {
            await swarm.RemoveServiceAsync(service);
        }
    }

    [Fact]
    public async Task A_task_that_never_leaves_pending_ends_the_deploy_at_the_deadline_and_names_the_task()
    {
        // A placement constraint nothing satisfies: the new task stays pending ("no suitable node"), which Swarm never
        // counts as a failure. Cutover keeps settings it does not manage, so the constraint is added by hand.
        const string service = "stuck";
        using var dir = new TempDir();
        var config = SwarmFixture.Load(swarm.WriteConfig(dir, service, replicas: 1));
        var settings = config.SettingsOf<SwarmSettings>();
        config = config with { Settings = settings with { Swarm = settings.Swarm with { TaskDeadline = TimeSpan.FromSeconds(4) } } };
        var swarmConfig = config.SettingsOf<SwarmSettings>().Swarm;
        var progress = new RecordingProgress(output);
        try
        {
            var v1 = await swarm.Deployer(config, progress).DeployAsync(Image("app:v1"), Soon());
            Assert.True(v1.Succeeded, v1.Error);
            using (var client = swarm.Client())
            {
                var live = await client.Swarm.InspectServiceAsync(service);
                live.Spec.TaskTemplate.Placement = new Placement { Constraints = ["node.labels.cutover-test==nowhere"] };
                live.Spec.UpdateConfig.FailureAction = "pause";
                await client.Swarm.UpdateServiceAsync(live.ID, new ServiceUpdateParameters { Service = live.Spec, Version = (long)live.Version.Index!.Value });
            }
            var v2 = await swarm.Deployer(config with { Settings = new SwarmSettings { Swarm = swarmConfig with { Update = swarmConfig.Update with { FailureAction = "pause" } } } }, progress)
                .DeployAsync(Image("app:v2"), Soon());
            Assert.False(v2.Succeeded);
            Assert.Contains("never reached running", v2.Error);
            Assert.Contains("pending", v2.Error);
            Assert.Contains("1/1", v2.Error);
        }
        finally
        {
            await swarm.RemoveServiceAsync(service);
        }
    }

    [Fact]
    public async Task Start_first_with_a_host_mode_port_hangs_in_swarm_and_cutover_gives_up_and_has_swarm_roll_back()
    {
        // moby #36934 for real: the new task cannot bind the port the old one holds, stays pending with "host-mode port
        // already in use", and Swarm waits forever. Cutover stops at task_deadline, names the task and, as
        // failure_action: rollback asks, has Swarm roll back.
        const string service = "hostport";
        using var dir = new TempDir();
        var port = Cutover.Platform.LoopbackPort.Free();
        File.WriteAllText(dir.Combine("compose.yml"), $$"""
            services:
              {{service}}:
                ports:
                  - { target: 3000, published: {{port}}, mode: host }
            """);
        var config = SwarmFixture.Load(swarm.WriteConfig(dir, service, replicas: 1, extra: "compose: compose.yml", taskDeadline: "4s"));
        Assert.Contains(config.Warnings, w => w.Contains("moby #36934", StringComparison.Ordinal));
        var progress = new RecordingProgress(output);
        try
        {
            var v1 = await swarm.Deployer(config, progress).DeployAsync(Image("app:v1"), Soon());
            Assert.True(v1.Succeeded, v1.Error);
            var v2 = await swarm.Deployer(config, progress).DeployAsync(Image("app:v2"), Soon());
            Assert.Equal(DeployOutcome.RolledBack, v2.Outcome);
            Assert.Contains("never reached running", v2.Error);
            Assert.Contains("task 1/1 (app:v2) pending", v2.Error);
            Assert.Contains("host-mode port already in use", v2.Error);
            Assert.Contains("Cutover had Swarm roll back", v2.Error);
            await AssertRunsAsync(service, "app:v1", 1);
        }
        finally
        {
            await swarm.RemoveServiceAsync(service);
        }
    }

    internal async Task AssertRunsAsync(string service, string image, int replicas)
    {
        var inspected = await swarm.InspectAsync(service);
        Assert.StartsWith(image, inspected.Spec.TaskTemplate.ContainerSpec.Image);
        var running = (await swarm.TasksAsync(service)).Where(t => t.DesiredState == TaskState.Running).ToList();
        Assert.Equal(replicas, running.Count);
        Assert.All(running, t => Assert.Equal(TaskState.Running, t.Status.State));
        Assert.All(running, t => Assert.StartsWith(image, t.Spec.ContainerSpec.Image));
    }

    internal static string? Release(TaskResponse t) => t.Spec.ContainerSpec.Labels?.TryGetValue(SwarmSpecBuilder.ReleaseLabel, out var r) == true ? r : null;

    private static string T(DateTime? time) => time?.ToString("HH:mm:ss.fff") ?? "-";
}
