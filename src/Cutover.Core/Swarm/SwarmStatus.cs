using Cutover.Containers;

namespace Cutover.Swarm;

/// <summary>What `cutover status` shows for a Swarm service, read from the manager.</summary>
public sealed record SwarmStatus(
    string Service,
    bool Exists,
    string? Image,
    string? Release,
    int Desired,
    int Running,
    string? UpdateState,
    string? UpdateMessage,
    IReadOnlyList<SwarmTask> Tasks,
    string? Error)
{
    /// <summary>Never throws for an unreachable manager: status still shows Cutover's own records.</summary>
    public static async Task<SwarmStatus> ReadAsync(Config.SwarmConfig swarm, CancellationToken cancellationToken)
    {
        try
        {
            using var client = DockerClientFactory.Create(swarm.DockerHost);
            var service = await SwarmServiceUpdater.InspectAsync(client, swarm.Service, cancellationToken);
            if (service is null) return new SwarmStatus(swarm.Service, false, null, null, 0, 0, null, null, [], null);
            var tasks = (await SwarmUpdateWatcher.ListTasksAsync(client, service.ID, cancellationToken)).Select(SwarmTask.From).ToList();
            // The tasks meant to run now, plus each slot's most recent failure when that slot has one: enough to see why.
            var shown = tasks.Where(t => t.DesiredState == "running")
                .Concat(tasks.Where(t => t.Failed).GroupBy(t => t.Slot).Select(g => g.MaxBy(t => t.Created)!))
                .DistinctBy(t => t.Id).OrderBy(t => t.Slot).ThenByDescending(t => t.Created).ToList();
            var container = service.Spec?.TaskTemplate?.ContainerSpec;
            return new SwarmStatus(
                swarm.Service,
                true,
                SwarmTask.ShortImage(container?.Image ?? ""),
                container?.Labels?.TryGetValue(SwarmSpecBuilder.ReleaseLabel, out var release) == true ? release : null,
                (int)(service.Spec?.Mode?.Replicated?.Replicas ?? 0),
                tasks.Count(t => t.DesiredState == "running" && t.IsRunning),
                service.UpdateStatus?.State,
                service.UpdateStatus?.Message,
                shown,
                null);
        }
        catch (Exception e) when (e is Docker.DotNet.DockerApiException or HttpRequestException or IOException or System.Net.Sockets.SocketException)
        {
            return new SwarmStatus(swarm.Service, false, null, null, 0, 0, null, null, [], $"cannot read the service from {swarm.DockerHost}: {e.Message}");
        }
    }
}
