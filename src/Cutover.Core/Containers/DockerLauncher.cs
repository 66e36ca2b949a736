using System.Globalization;
using Cutover.Config;
using Cutover.Supervisor;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Cutover.Containers;

/// <summary>
/// Starts instances as containers of the release's image on the app's user-defined bridge network (created when
/// missing), labelled app/release/instance, with the container healthcheck from docker.healthcheck. The proxy then
/// routes to the container's address, the way kamal-proxy does.
/// </summary>
public sealed class DockerLauncher(DockerClient docker, Func<Cutover.Config.DockerConfig> config) : IInstanceLauncher
{
    private readonly SemaphoreSlim _networkGate = new(1, 1);
    private bool _networkReady;

    public async Task<IRunningInstance> StartAsync(InstanceSpec spec, Action<string, string> onOutput, CancellationToken cancellationToken)
    {
        var settings = config();
        var image = spec.Image ?? settings.Image;
        try
        {
            await EnsureNetworkAsync(settings.Network, cancellationToken);
            // A process type (processes:) is a container of the same image running its own command, with no port,
            // no healthcheck and no place on the proxy.
            var web = spec.ServesHttp;
            var env = settings.Env.Select(kv => $"{kv.Key}={kv.Value}")
                .Concat(web ? [$"{spec.Run.PortEnv}={settings.Port.ToString(CultureInfo.InvariantCulture)}"] : [])
                .Append($"CUTOVER_PROCESS={spec.Process}")
                .Append($"CUTOVER_APP={spec.App}").Append($"CUTOVER_INSTANCE={spec.Index.ToString(CultureInfo.InvariantCulture)}").Append($"CUTOVER_RELEASE_ID={spec.ReleaseId}")
                .ToList();
            var create = new CreateContainerParameters
            {
                Name = $"cutover-{spec.Id}-{Guid.NewGuid().ToString("N")[..8]}",
                Image = image,
                Env = env,
                Labels = new Dictionary<string, string>
                {
                    [ContainerLabels.App] = spec.App,
                    [ContainerLabels.Release] = spec.ReleaseId,
                    [ContainerLabels.Instance] = spec.Index.ToString(CultureInfo.InvariantCulture),
                    [ContainerLabels.Process] = spec.Process,
                    [ContainerLabels.Image] = image,
                },
                StopSignal = spec.Run.StopSignalName,
                StopTimeout = TimeSpan.FromSeconds(Math.Ceiling(spec.Run.KillTimeout.TotalSeconds)),
                Healthcheck = web && settings.Healthcheck is { } h ? new HealthcheckConfig
                {
                    Test = h.Test.ToList(),
                    Interval = h.Interval,
                    Timeout = h.Timeout,
                    Retries = h.Retries,
                    StartPeriod = h.StartPeriod,
                    StartInterval = h.StartInterval ?? default,
                } : null,
                HostConfig = new HostConfig
                {
                    NetworkMode = settings.Network,
                    Binds = settings.Volumes.ToList(),
                    Init = settings.Init,
                },
            };
            // Web runs the image's own command; a process type its command, through the image's shell.
            if (web) create.ExposedPorts = new Dictionary<string, EmptyStruct> { [$"{settings.Port}/tcp"] = default };
            else create.Cmd = ["/bin/sh", "-c", spec.Run.Command];
            var created = await docker.Containers.CreateContainerAsync(create, cancellationToken);
            try
            {
                if (!await docker.Containers.StartContainerAsync(created.ID, new ContainerStartParameters(), cancellationToken))
                    throw new DeployException($"container {created.ID[..12]} of {image} did not start");
                return await ContainerInstance.AttachAsync(docker, created.ID, settings.Network, settings.Port, onOutput, cancellationToken);
            }
            catch
            {
                // Never leave a created-but-unsupervised container behind (a cancelled start included).
                await RemoveAsync(created.ID);
                throw;
            }
        }
        catch (DockerImageNotFoundException)
        {
            throw new DeployException($"image {image} is not on the Docker host {settings.Host}; pull or load it there first (docker pull {image})");
        }
        catch (DockerApiException e)
        {
            throw new DeployException($"docker could not start {image}: {e.ResponseBody?.Trim() ?? e.Message}");
        }
        catch (HttpRequestException e)
        {
            throw new DeployException($"cannot reach the Docker engine at {settings.Host}: {e.Message}");
        }
    }

    /// <summary>Running containers of <paramref name="app"/>, by the labels Cutover gave them.</summary>
    public async Task<IReadOnlyList<ContainerListResponse>> ListAsync(string app, CancellationToken cancellationToken) =>
        (await docker.Containers.ListContainersAsync(new ContainersListParameters
        {
            All = true,
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["label"] = new Dictionary<string, bool> { [$"{ContainerLabels.App}={app}"] = true } },
        }, cancellationToken)).ToList();

    /// <summary>
    /// Adopts a running container found by its labels (after an agent restart or during an upgrade). Its logs are
    /// followed from now: the agent that started it already wrote the earlier lines to the instance log, and Docker's
    /// default (every line since the container started) would write them all again on each adoption.
    /// </summary>
    public Task<ContainerInstance> AttachAsync(string id, Action<string, string> onOutput, CancellationToken cancellationToken)
    {
        var settings = config();
        return ContainerInstance.AttachAsync(docker, id, settings.Network, settings.Port, onOutput, cancellationToken, logsSince: DateTimeOffset.UtcNow);
    }

    public async Task RemoveAsync(string id)
    {
        try
        {
            await docker.Containers.RemoveContainerAsync(id, new ContainerRemoveParameters { Force = true }, CancellationToken.None);
        }
        catch (DockerContainerNotFoundException)
        {
        }
    }

    private async Task EnsureNetworkAsync(string network, CancellationToken cancellationToken)
    {
        if (_networkReady) return;
        await _networkGate.WaitAsync(cancellationToken);
        try
        {
            if (_networkReady) return;
            var existing = await docker.Networks.ListNetworksAsync(new NetworksListParameters
            {
                Filters = new Dictionary<string, IDictionary<string, bool>> { ["name"] = new Dictionary<string, bool> { [network] = true } },
            }, cancellationToken);
            if (!existing.Any(n => n.Name == network))
            {
                try
                {
                    await docker.Networks.CreateNetworkAsync(new NetworksCreateParameters { Name = network, Driver = "bridge", Attachable = true }, cancellationToken);
                }
                catch (DockerApiException e) when (e.StatusCode == System.Net.HttpStatusCode.Conflict)
                {
                    // made by someone else meanwhile
                }
            }
            _networkReady = true;
        }
        finally
        {
            _networkGate.Release();
        }
    }
}
