using Cutover.Config;
using Docker.DotNet.Models;
using SwarmConfig = Cutover.Config.SwarmConfig;

namespace Cutover.Swarm;

/// <summary>
/// cutover.yml's swarm section + an image + a release id -> the service spec Swarm is given. Pure. On an update it
/// starts from the live spec, so settings Cutover does not manage (placement, resources, secrets) survive.
/// </summary>
public static class SwarmSpecBuilder
{
    public const string AppLabel = "cutover.app";
    public const string ReleaseLabel = "cutover.release";

    public static ServiceSpec Build(CutoverConfig config, string image, string release, ServiceSpec? live = null, Config.SwarmUpdateConfig? updateWith = null)
    {
        var swarm = config.SettingsOf<Config.SwarmSettings>().Swarm;
        var spec = live ?? new ServiceSpec();
        spec.Name = swarm.Service;
        spec.Labels = WithCutoverLabels(spec.Labels, config.App, release);
        spec.TaskTemplate ??= new TaskSpec();
        var container = spec.TaskTemplate.ContainerSpec ??= new ContainerSpec();
        container.Image = image;
        // The release label is in the task spec too: it makes every deploy (and rollback) a new task spec, and tells
        // which tasks a given release created.
        container.Labels = WithCutoverLabels(container.Labels, config.App, release);
        // swarm.command replaces the image's CMD, as compose's `command` does (docker stack deploy maps it to Args).
        container.Args = swarm.Command?.ToList();
        container.Env = swarm.Env.Select(e => $"{e.Key}={e.Value}").ToList();
        container.Init = swarm.Init;
        container.StopGracePeriod = swarm.StopGracePeriod;
        container.Healthcheck = swarm.Healthcheck is { } h
            ? new HealthcheckConfig { Test = h.Test.ToList(), Interval = h.Interval, Timeout = h.Timeout, Retries = h.Retries, StartPeriod = h.StartPeriod, StartInterval = h.StartInterval ?? default }
            : null;
        spec.TaskTemplate.Networks = swarm.Networks.Select(n => new NetworkAttachmentConfig { Target = n }).ToList();
        spec.Mode = new ServiceMode { Replicated = new ReplicatedService { Replicas = (ulong)swarm.Replicas } };
        spec.UpdateConfig = ToDocker(updateWith ?? swarm.Update);
        spec.RollbackConfig = ToDocker(swarm.Rollback);
        spec.EndpointSpec = new EndpointSpec
        {
            Ports = swarm.Ports.Select(p => new PortConfig { Protocol = "tcp", PublishedPort = (uint)p.Published, TargetPort = (uint)p.Target, PublishMode = p.Mode }).ToList(),
        };
        return spec;
    }

    public static Docker.DotNet.Models.SwarmUpdateConfig ToDocker(Config.SwarmUpdateConfig update) => new()
    {
        Parallelism = (ulong)update.Parallelism,
        Delay = update.Delay,
        Order = update.Order,
        FailureAction = update.FailureAction,
        Monitor = update.Monitor,
        MaxFailureRatio = (float)update.MaxFailureRatio,
    };

    /// <summary>One line for the release record: what else, besides the image, this release ran with.</summary>
    public static string Summary(SwarmConfig swarm)
    {
        static string U(Config.SwarmUpdateConfig u) =>
            $"parallelism {u.Parallelism}, {u.Order}, delay {Duration.Format(u.Delay)}, monitor {Duration.Format(u.Monitor)}, failure_action {u.FailureAction}, max_failure_ratio {u.MaxFailureRatio:0.##}";
        var health = swarm.Healthcheck is { } h ? $"healthcheck {string.Join(' ', h.Test)} every {Duration.Format(h.Interval)}" : "no healthcheck";
        return $"{swarm.Replicas} replicas; update: {U(swarm.Update)}; rollback: {U(swarm.Rollback)}; {health}";
    }

    private static Dictionary<string, string> WithCutoverLabels(IDictionary<string, string>? labels, string app, string release)
    {
        var merged = labels is null ? new Dictionary<string, string>() : new Dictionary<string, string>(labels);
        merged[AppLabel] = app;
        merged[ReleaseLabel] = release;
        return merged;
    }
}
