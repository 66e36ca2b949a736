using Cutover.Config;

namespace Cutover.Supervisor;

/// <summary>
/// What runs an app's instances, as the agent sees it for as long as it runs the app: processes (here) or containers
/// (Containers/DockerRuntime). Opened by <see cref="InstanceRuntimeConfig.Open"/>, so supervision never asks which one it is.
/// </summary>
public interface IInstanceRuntime : IAsyncDisposable
{
    IInstanceLauncher Launcher { get; }

    /// <summary>The port a new instance listens on.</summary>
    int NewPort();

    /// <summary>The image a release runs, when releases are images; null for files.</summary>
    string? ImageOf(string releaseDir);

    /// <summary>
    /// After an agent restart: take over what still runs of <paramref name="releaseId"/>, start the rest. With
    /// <paramref name="handover"/> (an upgrade's new agent before the commit, for instances that outlive the agent): take
    /// over what runs without acting on anything, supervised only from <see cref="ManagedInstance.Supervise"/>.
    /// </summary>
    Task<string?> AdoptAllAsync(AppRuntime app, string releaseId, string releaseDir, CancellationToken cancellationToken, ContainerHandover? handover = null);

    /// <summary>A restarted agent that runs nothing of the app removes what of it still runs.</summary>
    Task RemoveLeftoversAsync(string app, CancellationToken cancellationToken);

    /// <summary>Takes a changed runtime section for instances started from now on, or says why it cannot under a running app.</summary>
    string? Reconfigure(InstanceRuntimeConfig config);
}

/// <summary>
/// What an upgrade's old agent passes on about instances the new one finds by itself (containers): each one's restart
/// count, by instance id, so the counters carry on.
/// </summary>
public sealed record ContainerHandover(IReadOnlyDictionary<string, int> Restarts);

/// <summary>runtime: process: a process group per instance on a free loopback port.</summary>
public sealed class ProcessRuntime(object spawnGate) : IInstanceRuntime
{
    public IInstanceLauncher Launcher { get; } = new ProcessLauncher(spawnGate);
    public int NewPort() => Platform.LoopbackPort.Free();
    public string? ImageOf(string releaseDir) => null;

    // A killed agent's processes cannot be supervised again (their pipes are gone): OrphanInstances ends them,
    // so here adopting is starting. An upgrade hands processes over with their pipes instead (AgentServer.Takeover.cs).
    public Task<string?> AdoptAllAsync(AppRuntime app, string releaseId, string releaseDir, CancellationToken cancellationToken, ContainerHandover? handover = null) =>
        handover is not null ? throw new InvalidOperationException("processes are handed over with their pipes, not found again")
        : app.StartAllAsync(releaseId, releaseDir, cancellationToken);

    public Task RemoveLeftoversAsync(string app, CancellationToken cancellationToken) => Task.CompletedTask;

    public string? Reconfigure(InstanceRuntimeConfig config) =>
        config is ProcessRuntimeConfig ? null : $"runtime changed from process to {config.Name}; run `cutover stop`, restart the agent, and deploy again";

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
