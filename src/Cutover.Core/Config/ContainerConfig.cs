namespace Cutover.Config;

/// <summary>What runs an instance: a process group (the default) or a Docker container.</summary>
public enum InstanceRuntime { Process, Docker }

/// <summary>A container healthcheck, as in a compose file; durations parsed.</summary>
public sealed record ContainerHealthcheck
{
    /// <summary>["CMD", ...], ["CMD-SHELL", "..."] or ["NONE"].</summary>
    public required IReadOnlyList<string> Test { get; init; }
    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(30);
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(30);
    public int Retries { get; init; } = 3;
    public TimeSpan StartPeriod { get; init; } = TimeSpan.Zero;

    /// <summary>How long Docker needs at most to call a container unhealthy after it started.</summary>
    public TimeSpan TimeToDecide => StartPeriod + TimeToTurnUnhealthy;

    /// <summary>
    /// How long a container that was healthy needs at most to be called unhealthy: `retries` failed probes in a row,
    /// each up to interval + timeout. start_period does not count: it ends with the first healthy probe.
    /// </summary>
    public TimeSpan TimeToTurnUnhealthy => (Interval + Timeout) * Retries;
}

/// <summary>The `docker` section: instances are containers of one image on a user-defined bridge network.</summary>
public sealed record DockerConfig
{
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
