using Cutover.Config;
using Cutover.Containers;
using Cutover.Deploy;
using Cutover.Progress;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Cutover.Swarm;

/// <summary>
/// <see cref="ISwarmUpdater"/> over the Engine API at swarm.docker_host: <see cref="SwarmServiceUpdater"/> for the
/// update, and Docker's refusals (a bad spec, a name taken, not a manager) as a <see cref="DeployException"/> in its words.
/// </summary>
public sealed class DockerSwarmUpdater(CutoverConfig config, IDeployProgress progress) : ISwarmUpdater
{
    private Config.SwarmConfig Swarm => config.SettingsOf<SwarmSettings>().Swarm;

    public Task<bool> ServiceExistsAsync(CancellationToken cancellationToken) =>
        WithDockerAsync(async client => await SwarmServiceUpdater.InspectAsync(client, Swarm.Service, cancellationToken) is not null);

    public Task<SwarmUpdateOutcome> ApplyAsync(string image, string release, Config.SwarmUpdateConfig updateWith, CancellationToken cancellationToken) =>
        WithDockerAsync(client => new SwarmServiceUpdater(client, config, progress).ApplyAsync(image, release, updateWith, cancellationToken));

    public Task RemoveServiceAsync(CancellationToken cancellationToken) => WithDockerAsync(async client =>
    {
        try
        {
            await client.Swarm.RemoveServiceAsync(Swarm.Service, cancellationToken);
        }
        catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
        }
        return true;
    });

    public Task RestorePreviousSpecAsync(CancellationToken cancellationToken) => WithDockerAsync(async client =>
    {
        var now = await client.Swarm.InspectServiceAsync(Swarm.Service, cancellationToken);
        await client.Swarm.UpdateServiceAsync(now.ID, new ServiceUpdateParameters { Service = now.Spec!, Version = (long)(now.Version?.Index ?? 0), Rollback = "previous" }, cancellationToken);
        return true;
    });

    /// <summary>A call on the Engine API, its refusals as Docker words them.</summary>
    private async Task<T> WithDockerAsync<T>(Func<DockerClient, Task<T>> call)
    {
        using var client = DockerClientFactory.Create(Swarm.DockerHost);
        try
        {
            return await call(client);
        }
        catch (DockerApiException e)
        {
            throw new DeployException($"docker refused: {e.ResponseBody?.Trim() ?? e.Message}");
        }
    }
}
