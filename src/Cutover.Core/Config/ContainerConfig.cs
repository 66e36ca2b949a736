namespace Cutover.Config;

/// <summary>
/// `runtime:`, what runs an instance, as a capability: it opens the live runtime the agent supervises through
/// (<see cref="Supervisor.IInstanceRuntime"/>) and says what a release is. Nothing else asks which runtime it is.
/// </summary>
public abstract record InstanceRuntimeConfig
{
    private protected InstanceRuntimeConfig() { }

    /// <summary>The word in cutover.yml.</summary>
    public abstract string Name { get; }
    public abstract bool DeploysImage { get; }
    /// <summary>Instances keep running when the agent goes, for the next agent to take over (containers; processes cannot outlive their pipes).</summary>
    public abstract bool InstancesOutliveAgent { get; }
    /// <summary>The image's own command runs: run.command is refused, and run may be left out.</summary>
    public abstract bool RunsImageCommand { get; }
    /// <summary>An instance can signal readiness itself (ready: notify over NOTIFY_SOCKET, ready: message over the Node IPC channel).</summary>
    public abstract bool PassesReadySignals { get; }
    public abstract (string Name, int Number) DefaultStopSignal { get; }
    public abstract TimeSpan DefaultKillTimeout { get; }
    public abstract Staging.ReleaseSource OpenRelease(string source, string? image, string root);
    /// <summary>The runtime an app's instances run in, for as long as the agent runs the app.</summary>
    public abstract Supervisor.IInstanceRuntime Open(object spawnGate);
}

/// <summary>runtime: process (the default): a process group per instance, from the release's files.</summary>
public sealed record ProcessRuntimeConfig : InstanceRuntimeConfig
{
    public override string Name => "process";
    public override bool DeploysImage => false;
    public override bool InstancesOutliveAgent => false;
    public override bool RunsImageCommand => false;
    public override bool PassesReadySignals => true;
    // PM2's defaults.
    public override (string Name, int Number) DefaultStopSignal => ("SIGINT", 2);
    public override TimeSpan DefaultKillTimeout => TimeSpan.FromSeconds(5);
    public override Staging.ReleaseSource OpenRelease(string source, string? image, string root) => new(Staging.ArtifactSource.Open(source, root), Image: null);
    public override Supervisor.IInstanceRuntime Open(object spawnGate) => new Supervisor.ProcessRuntime(spawnGate);
}

/// <summary>A container healthcheck, as in a compose file; durations parsed.</summary>
public sealed record ContainerHealthcheck
{
    /// <summary>["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"].</summary>
    public required IReadOnlyList<string> Test { get; init; }
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
    public int Retries { get; init; } = 3;
    public TimeSpan StartPeriod { get; init; } = TimeSpan.Zero;
    /// <summary>compose's start_interval: how often Docker probes during start_period; null leaves Docker's default (5 s).</summary>
    public TimeSpan? StartInterval { get; init; }

    /// <summary>How long Docker needs at most to call a container unhealthy after it started.</summary>
    public TimeSpan TimeToDecide => StartPeriod + TimeToTurnUnhealthy;

    /// <summary>
    /// How long a container that was healthy needs at most to be called unhealthy: `retries` failed probes in a row,
    /// each up to interval + timeout. start_period does not count: it ends with the first healthy probe.
    /// </summary>
    public TimeSpan TimeToTurnUnhealthy => (Interval + Timeout) * Retries;
}

/// <summary>runtime: docker and the `docker` section: instances are containers of one image on a user-defined bridge network.</summary>
public sealed record DockerConfig : InstanceRuntimeConfig
{
    public override string Name => "docker";
    public override bool DeploysImage => true;
    public override bool InstancesOutliveAgent => true;
    public override bool RunsImageCommand => true;
    public override bool PassesReadySignals => false;
    // Docker's defaults.
    public override (string Name, int Number) DefaultStopSignal => ("SIGTERM", 15);
    public override TimeSpan DefaultKillTimeout => TimeSpan.FromSeconds(10);
    /// <summary>A container release is its image: the one given to `deploy --image`, else docker.image.</summary>
    public override Staging.ReleaseSource OpenRelease(string source, string? image, string root) =>
        new(new Containers.ImageArtifact(image ?? Image), image ?? Image);
    public override Supervisor.IInstanceRuntime Open(object spawnGate) => new Containers.DockerRuntime(this);

    public string Host { get; init; } = "unix:///var/run/docker.sock";
    public required string Image { get; init; }
    /// <summary>The port the app listens on inside the container.</summary>
    public required int Port { get; init; }
    public string Network { get; init; } = "cutover";
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
    public IReadOnlyList<string> Volumes { get; init; } = [];
    public ContainerHealthcheck? Healthcheck { get; init; }
    /// <summary>Docker's init (tini) as PID 1, so stop_signal reaches apps that ignore signals as PID 1.</summary>
    public bool Init { get; init; } = true;
}

/// <summary>Swarm's update_config / rollback_config, with Cutover's defaults where Swarm's are traps.</summary>
public sealed record SwarmUpdateConfig
{
    public int Parallelism { get; init; } = 1;
    public TimeSpan Delay { get; init; } = TimeSpan.Zero;
    public string Order { get; init; } = "start-first";
    public string FailureAction { get; init; } = "rollback";
    public TimeSpan Monitor { get; init; } = TimeSpan.FromSeconds(5);
    public double MaxFailureRatio { get; init; }
}

/// <summary>The `swarm` section: one Swarm service, updated by the manager node Cutover talks to.</summary>
public sealed record SwarmConfig
{
    public string DockerHost { get; init; } = "unix:///var/run/docker.sock";
    public required string Service { get; init; }
    public required string Image { get; init; }
    public int Replicas { get; init; } = 1;
    public IReadOnlyList<string>? Command { get; init; }
    public IReadOnlyDictionary<string, string> Env { get; init; } = new Dictionary<string, string>();
    /// <summary>Published ports as "published:target[/mode]", mode ingress or host (from the compose file).</summary>
    public IReadOnlyList<SwarmPort> Ports { get; init; } = [];
    /// <summary>Networks the tasks join (overlay, or swarm-scoped bridge), by name; they must exist.</summary>
    public IReadOnlyList<string> Networks { get; init; } = [];
    public SwarmUpdateConfig Update { get; init; } = new();
    public SwarmUpdateConfig Rollback { get; init; } = new() { Parallelism = 0, Order = "stop-first", FailureAction = "pause" };
    public ContainerHealthcheck? Healthcheck { get; init; }
    public TimeSpan StopGracePeriod { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Docker's init (tini) as PID 1, so SIGTERM stops apps that ignore signals as PID 1 within the grace period.</summary>
    public bool Init { get; init; } = true;
    /// <summary>
    /// How long a new task may stay before running (pending, preparing, starting) before Cutover gives up on the
    /// update: Swarm itself never does. Null: the healthcheck's time to decide + monitor + a minute for pulls.
    /// </summary>
    public TimeSpan? TaskDeadline { get; init; }

    public TimeSpan EffectiveTaskDeadline => TaskDeadline ?? (Healthcheck?.TimeToDecide ?? TimeSpan.Zero) + Update.Monitor + TimeSpan.FromMinutes(1);
}

public sealed record SwarmPort(int Published, int Target, string Mode);
