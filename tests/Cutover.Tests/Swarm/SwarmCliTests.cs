// Docker.DotNet's models make every field nullable; a missing one here fails the test anyway.
#nullable disable warnings
using System.Text.Json;
using Cutover.Tests.Support;
using Docker.DotNet.Models;
using Xunit.Abstractions;

namespace Cutover.Tests.Swarm;

/// <summary>The real `cutover` binary against a real Swarm: deploy, Swarm's own rollback, and Cutover's rollback.</summary>
[Collection(SwarmCollection.Name)]
[Trait(Needs.Trait, Needs.Docker)]
public class SwarmCliTests(SwarmFixture swarm, ITestOutputHelper output)
{
    [Fact]
    public async Task An_unhealthy_image_is_rolled_back_by_swarm_and_cutover_rollback_then_goes_to_the_last_good_release_not_swarms_previous_spec()
    {
        const string service = "cli";
        using var dir = new TempDir();
        swarm.WriteConfig(dir, service, replicas: 2);
        try
        {
            var v1 = await Cli(dir, "deploy", "--image", "app:v1");
            Assert.Equal(0, v1.ExitCode);
            Assert.Contains("created service cli", v1.Stdout);
            Assert.Contains("1/2: running app:v1", v1.Stdout);
            Assert.Contains("2/2: running app:v1", v1.Stdout);
            var v2 = await Cli(dir, "deploy", "--image", "app:v2", "--json");
            Assert.Equal(0, v2.ExitCode);
            var events = v2.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonSerializer.Deserialize<JsonElement>(l)).ToList();
            Assert.Contains(events, e => e.GetProperty("event").GetString() == "info" && e.GetProperty("message").GetString() == "swarm: completed: update completed");
            Assert.Contains(events, e => e.GetProperty("event").GetString() == "warning");
            Assert.Equal(("result", "success"), (events[^1].GetProperty("event").GetString(), events[^1].GetProperty("outcome").GetString()));

            var bad = await Cli(dir, "deploy", "--image", "app:bad");
            Assert.Equal(1, bad.ExitCode);
            Assert.Contains("Swarm rolled the update back", bad.Stderr);
            // The failed task is named, with Docker's reason: its healthcheck never passed.
            Assert.Matches(@"task \d/2 \(app:bad\) (failed|shutdown|complete): .*unhealthy", bad.Stderr);
            await new SwarmUpdateTests(swarm, output).AssertRunsAsync(service, "app:v2", 2);
            // The trap Cutover avoids: Swarm keeps one level of PreviousSpec, and its automatic rollback used it up, so
            // `docker service rollback` could not reach app:v1 now.
            var previous = (await swarm.InspectAsync(service)).PreviousSpec?.TaskTemplate?.ContainerSpec?.Image;
            output.WriteLine($"Swarm's PreviousSpec after its rollback: {previous ?? "(none)"}");
            Assert.False(previous?.StartsWith("app:v1", StringComparison.Ordinal) == true);

            var releases = JsonSerializer.Deserialize<JsonElement>((await Cli(dir, "releases", "--json")).Stdout);
            var statuses = releases.EnumerateArray().Select(r => (r.GetProperty("image").GetString(), r.GetProperty("status").GetString())).ToList();
            Assert.Equal([("app:bad", "failed"), ("app:v2", "active"), ("app:v1", "active")], statuses);

            var rollback = await Cli(dir, "rollback");
            Assert.Equal(0, rollback.ExitCode);
            await new SwarmUpdateTests(swarm, output).AssertRunsAsync(service, "app:v1", 2);

            var status = JsonSerializer.Deserialize<JsonElement>((await Cli(dir, "status", "--json")).Stdout).GetProperty("swarm");
            Assert.Equal("app:v1", status.GetProperty("image").GetString());
            Assert.Equal(2, status.GetProperty("replicas").GetProperty("running").GetInt32());
            Assert.Equal(2, status.GetProperty("replicas").GetProperty("desired").GetInt32());
            var plain = await Cli(dir, "status");
            Assert.Contains("2/2 running", plain.Stdout);
        }
        finally
        {
            await swarm.RemoveServiceAsync(service);
        }
    }

    private async Task<CliResult> Cli(TempDir dir, params string[] args)
    {
        var result = await CutoverCli.RunAsync(dir.Path, args);
        output.WriteLine($"$ cutover {string.Join(' ', args)} -> {result.ExitCode}\n{result.Stdout}{result.Stderr}");
        return result;
    }
}
