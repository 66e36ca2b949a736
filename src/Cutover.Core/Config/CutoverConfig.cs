namespace Cutover.Config;

/// <summary>A cutover.yml, validated. Paths are absolute; durations are parsed.</summary>
public sealed record CutoverConfig
{
    public required string File { get; init; }
    public required string App { get; init; }
    public string Strategy { get; init; } = "symlink";
    public required string Root { get; init; }
    public int KeepReleases { get; init; } = 5;
    public SharedConfig Shared { get; init; } = new();
    public HooksConfig Hooks { get; init; } = new();
    public HealthConfig? Health { get; init; }

    // The rolling strategy: instances behind Cutover's proxy, run by the agent.
    public RunConfig? Run { get; init; }
    public ProxyConfig? Proxy { get; init; }
    public InstanceHealthConfig InstanceHealth { get; init; } = new();
    public RollingConfig Rolling { get; init; } = new();
    public BlueGreenConfig BlueGreen { get; init; } = new();
    public LogsConfig Logs { get; init; } = new();

    /// <summary>PostgreSQL migrations linted before staging and applied before the switch; null when not configured.</summary>
    public MigrationsConfig? Migrations { get; init; }

    /// <summary>Processes or containers, for the strategies that run instances.</summary>
    public InstanceRuntime Runtime { get; init; } = InstanceRuntime.Process;
    public DockerConfig? Docker { get; init; }
    public SwarmConfig? Swarm { get; init; }
    /// <summary>Things that are allowed but probably wrong (Swarm settings that hang or mislead); shown, never fatal.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
    /// <summary>The servers this config deploys to over SSH; null deploys on this machine.</summary>
    public Fleet.FleetConfig? Fleet { get; init; }

    /// <summary>Strategies whose releases run as instances under the agent.</summary>
    public bool RunsInstances => Strategy is "rolling" or "blue-green";
}

/// <summary>Paths, relative to a release, that live in <c>shared/</c> and survive every deploy.</summary>
public sealed record SharedConfig
{
    public IReadOnlyList<string> Files { get; init; } = [];
    public IReadOnlyList<string> Dirs { get; init; } = [];
}

public sealed record HooksConfig
{
    public IReadOnlyList<string> Build { get; init; } = [];
    public IReadOnlyList<string> BeforeSwitch { get; init; } = [];
    public IReadOnlyList<string> AfterSwitch { get; init; } = [];
    public IReadOnlyList<string> AfterRollback { get; init; } = [];
    public TimeSpan Timeout { get; init; } = TimeSpan.FromMinutes(10);
}

/// <summary>An HTTP check run after the switch; when it never passes, the deploy rolls back by itself.</summary>
public sealed record HealthConfig
{
    public required Uri Url { get; init; }
    public int ExpectStatus { get; init; } = 200;
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(2);
    public TimeSpan Interval { get; init; } = TimeSpan.FromMilliseconds(500);
    public int Retries { get; init; } = 10;
}
