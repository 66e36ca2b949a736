using Cutover.Config;
using Cutover.Supervisor;
using Docker.DotNet;
using DockerConfig = Cutover.Config.DockerConfig;

namespace Cutover.Containers;

/// <summary>
/// runtime: docker, as the agent runs it: one Engine API client per app, containers of the release's image that
/// keep running when the agent goes and are taken over by the next one.
/// </summary>
public sealed class DockerRuntime : IInstanceRuntime
{
    private readonly DockerClient _docker;
    private readonly DockerLauncher _launcher;
    private DockerConfig _config;

    public DockerRuntime(DockerConfig config)
    {
        _config = config;
        _docker = DockerClientFactory.Create(config.Host);
        // The launcher reads the section at each start, so a reconfigured image, env or network applies to the next container.
        _launcher = new DockerLauncher(_docker, () => _config);
    }

    public IInstanceLauncher Launcher => _launcher;

    // A container listens on its own address, so every instance can use the same port.
    public int NewPort() => _config.Port;

    public string? ImageOf(string releaseDir) => ContainerRelease.ImageOf(releaseDir);

    /// <summary>
    /// The containers of <paramref name="releaseId"/> that still run are taken over where they are (matched to slots of
    /// their process type by their labels); slots without one get a new container, and containers of the app that match
    /// no slot (other releases, duplicates, exited ones, a process type no longer run here) are removed.
    /// <paramref name="handover"/> (an upgrade's new agent, before the commit): the old agent still owns every container
    /// and may take them back, so nothing is started, stopped or removed here and supervision waits for
    /// <see cref="ManagedInstance.Supervise"/>; a slot without a ready container fails the takeover instead.
    /// </summary>
    public async Task<string?> AdoptAllAsync(AppRuntime app, string releaseId, string releaseDir, CancellationToken cancellationToken, ContainerHandover? handover = null)
    {
        var found = await _launcher.ListAsync(app.Config.App, cancellationToken);
        var adopted = app.Groups.ToDictionary(g => g.Name, g => new ManagedInstance?[g.Slots.Length]);
        async Task<string> FailHandoverAsync(string problem)
        {
            foreach (var instance in adopted.Values.SelectMany(slots => slots)) if (instance is not null) await instance.LetGoAsync();
            return problem;
        }
        foreach (var container in found)
        {
            var labels = new Dictionary<string, string>(container.Labels ?? new Dictionary<string, string>());
            var group = app.Groups.FirstOrDefault(g => g.Name == labels.GetValueOrDefault(ContainerLabels.Process, ProcessConfigReader.Web));
            var fits = group is not null && container.State == "running" && labels.GetValueOrDefault(ContainerLabels.Release) == releaseId
                && int.TryParse(labels.GetValueOrDefault(ContainerLabels.Instance), out var slot) && slot >= 0 && slot < group.Slots.Length && adopted[group.Name][slot] is null;
            if (!fits)
            {
                // In a handover it is the old agent's (its warm set, or a slot it restarts once it takes everything back).
                if (handover is null) await _launcher.RemoveAsync(container.ID);
                continue;
            }
            var index = int.Parse(labels[ContainerLabels.Instance], System.Globalization.CultureInfo.InvariantCulture);
            var instance = app.NewInstance(group!, index, releaseId, releaseDir);
            var running = await _launcher.AttachAsync(container.ID, (stream, line) => app.Log.Write(instance.Spec.Id, null, stream, line), cancellationToken);
            var restarts = handover?.Restarts.GetValueOrDefault(instance.Spec.Id) ?? 0;
            if (await instance.AdoptAsync(running, cancellationToken, restarts: restarts, supervise: handover is null) is { } problem)
            {
                app.Log.Write(instance.Spec.Id, running.Pid, "cutover", $"not adopted: {problem}");
                if (handover is not null)
                {
                    await running.LetGoAsync();
                    return await FailHandoverAsync($"instance {instance.Spec.Id} ({running.Description}): {problem}");
                }
                await running.StopAsync(group!.Run.StopSignal, group.Run.KillTimeout);
                continue;
            }
            adopted[group!.Name][index] = instance;
        }
        foreach (var group in app.Groups)
        {
            for (var i = 0; i < group.Slots.Length; i++)
            {
                if (adopted[group.Name][i] is not null) continue;
                if (handover is not null) return await FailHandoverAsync($"instance {(group.IsWeb ? $"{app.Config.App}-{i}" : $"{app.Config.App}-{group.Name}-{i}")} has no running container of release {releaseId}");
                var fresh = app.NewInstance(group, i, releaseId, releaseDir);
                if (await fresh.StartAsync(cancellationToken) is { } problem) return $"instance {fresh.Spec.Id}: {problem}";
                adopted[group.Name][i] = fresh;
            }
        }
        foreach (var group in app.Groups)
            for (var i = 0; i < group.Slots.Length; i++) group.Slots[i] = adopted[group.Name][i];
        app.ReleaseId = releaseId;
        app.ReleaseDir = releaseDir;
        return null;
    }

    public async Task RemoveLeftoversAsync(string app, CancellationToken cancellationToken)
    {
        foreach (var container in await _launcher.ListAsync(app, cancellationToken)) await _launcher.RemoveAsync(container.ID);
    }

    public string? Reconfigure(InstanceRuntimeConfig config)
    {
        if (config is not DockerConfig docker)
            return $"runtime changed from docker to {config.Name}; run `cutover stop`, restart the agent, and deploy again";
        if (docker.Host != _config.Host)
            return $"docker.host changed from {_config.Host} to {docker.Host}; run `cutover stop`, restart the agent, and deploy again";
        _config = docker;
        return null;
    }

    public ValueTask DisposeAsync()
    {
        _docker.Dispose();
        return ValueTask.CompletedTask;
    }
}
