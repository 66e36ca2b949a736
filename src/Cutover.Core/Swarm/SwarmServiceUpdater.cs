using System.Net;
using Cutover.Config;
using Cutover.Progress;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Cutover.Swarm;

/// <summary>
/// Puts one release on the Swarm service: creates the service when it is missing, otherwise updates it, then
/// follows the update to its end. When a task hangs before running and the update's failure_action is rollback,
/// it does what Swarm would have done had it counted the hang as a failure: a server-side rollback.
/// </summary>
public sealed class SwarmServiceUpdater(IDockerClient client, CutoverConfig config, IDeployProgress progress)
{
    private Config.SwarmConfig Swarm { get; } = config.SettingsOf<Config.SwarmSettings>().Swarm;

    /// <param name="updateWith">The update config for this change: the swarm.update one for deploys, swarm.rollback for Cutover's rollbacks.</param>
    public async Task<SwarmUpdateOutcome> ApplyAsync(string image, string release, Config.SwarmUpdateConfig updateWith, CancellationToken cancellationToken)
    {
        var live = await InspectAsync(client, Swarm.Service, cancellationToken);
        var spec = SwarmSpecBuilder.Build(config, image, release, live?.Spec, updateWith);
        var before = live is null ? null : await SwarmUpdateWatcher.SnapshotAsync(client, live, cancellationToken);
        if (live is null)
        {
            var created = await client.Swarm.CreateServiceAsync(new ServiceCreateParameters { Service = spec }, cancellationToken);
            foreach (var warning in created.Warnings ?? []) progress.Warning($"docker: {warning}");
            progress.Info($"created service {Swarm.Service} ({Swarm.Replicas} replicas of {image})");
        }
        else
        {
            var updated = await client.Swarm.UpdateServiceAsync(live.ID, new ServiceUpdateParameters { Service = spec, Version = VersionOf(live) }, cancellationToken);
            foreach (var warning in updated.Warnings ?? []) progress.Warning($"docker: {warning}");
            progress.Info($"updating service {Swarm.Service} to {image}: parallelism {updateWith.Parallelism}, {updateWith.Order}, monitor {Duration.Format(updateWith.Monitor)}, failure_action {updateWith.FailureAction}");
        }

        var watcher = new SwarmUpdateWatcher(client, progress, Swarm.EffectiveTaskDeadline);
        var outcome = await watcher.WatchAsync(Swarm.Service, release, Swarm.Replicas, before, cancellationToken);
        if (outcome.Result != SwarmUpdateResult.Stuck || live is null || updateWith.FailureAction != "rollback") return outcome;

        progress.Warning($"{outcome.Describe(Swarm.Replicas)}; asking Swarm to roll back, as failure_action: rollback says");
        var now = await client.Swarm.InspectServiceAsync(Swarm.Service, cancellationToken);
        var stuck = await SwarmUpdateWatcher.SnapshotAsync(client, now, cancellationToken);
        await client.Swarm.UpdateServiceAsync(now.ID, new ServiceUpdateParameters { Service = now.Spec!, Version = VersionOf(now), Rollback = "previous" }, cancellationToken);
        var previousRelease = live.Spec?.TaskTemplate?.ContainerSpec?.Labels?.TryGetValue(SwarmSpecBuilder.ReleaseLabel, out var r) == true ? r : "";
        var rollback = await watcher.WatchAsync(Swarm.Service, previousRelease, Swarm.Replicas, stuck, cancellationToken);
        return rollback.BackOnPrevious
            ? outcome with { UpdateMessage = "Cutover had Swarm roll back", BackOnPrevious = true }
            : outcome with { UpdateMessage = $"the rollback Cutover asked for did not finish: {rollback.Describe(Swarm.Replicas)}" };
    }

    /// <summary>The spec version an update must name, so a concurrent change makes it fail instead of being lost.</summary>
    private static long VersionOf(SwarmService service) => (long)(service.Version?.Index ?? 0);

    public static async Task<SwarmService?> InspectAsync(IDockerClient client, string service, CancellationToken cancellationToken)
    {
        try
        {
            return await client.Swarm.InspectServiceAsync(service, cancellationToken);
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }
}
