namespace Cutover.Config;

/// <summary>A cutover.yml, validated. Paths are absolute; durations are parsed.</summary>
public sealed record CutoverConfig
{
    public required string File { get; init; }
    /// <summary>Every -c file, in order (later ones override earlier ones key by key); [File] for one.</summary>
    public IReadOnlyList<string> Files { get; init; } = [];
    /// <summary>Top-level env and env_file, resolved; already folded into each process's env (see AppEnvironment.ApplyTo).</summary>
    public AppEnvironment Environment { get; init; } = AppEnvironment.Empty;
    public required string App { get; init; }
    public required string Root { get; init; }
    public int KeepReleases { get; init; } = 5;
    public SharedConfig Shared { get; init; } = new();
    public HooksConfig Hooks { get; init; } = new();
    /// <summary>The check after the switch, through the public URL; every strategy runs it.</summary>
    public HealthConfig? Health { get; init; }

    /// <summary>PostgreSQL migrations linted before staging and applied before the switch; null when not configured.</summary>
    public MigrationsConfig? Migrations { get; init; }

    /// <summary>What the chosen strategy, and only it, reads: pattern-match it once, or take the specific record.</summary>
    public StrategySettings Settings { get; init; } = new SymlinkSettings();

    /// <summary>Things that are allowed but probably wrong (Swarm settings that hang or mislead); shown, never fatal.</summary>
    public IReadOnlyList<string> Warnings { get; init; } = [];
    /// <summary>The servers this config deploys to over SSH; null deploys on this machine.</summary>
    public FleetConfig? Fleet { get; init; }
    /// <summary>The webhook told about deploys, rollbacks and pauses; null when not configured.</summary>
    public NotifyConfig? Notify { get; init; }

    public Strategy Strategy => Settings.Strategy;

    /// <summary>The strategy's record, for code that serves one strategy only; a config of another strategy is a programming error.</summary>
    public T SettingsOf<T>() where T : StrategySettings =>
        Settings as T ?? throw new ArgumentException($"strategy: {Strategy} is not configured by {typeof(T).Name}");

    /// <summary>Strategies whose releases run as instances under the agent.</summary>
    public bool RunsInstances => Strategy.RunsInstances;
}

/// <summary>The part of a config only one strategy (or, for instances, two) reads. A closed hierarchy.</summary>
public abstract record StrategySettings
{
    private protected StrategySettings() { }

    public abstract Strategy Strategy { get; }

    /// <summary>A release is an image (`deploy --image`), not a directory or archive of files.</summary>
    public abstract bool DeploysImage { get; }

    /// <summary>What `cutover deploy` stages as a release: the files at <paramref name="source"/>, or an image.</summary>
    public virtual Staging.ReleaseSource OpenRelease(string source, string? image, string root) =>
        new(Staging.ArtifactSource.Open(source, root), Image: null);
}

/// <summary>strategy: symlink: a release is files; going live is the `current` rename.</summary>
public sealed record SymlinkSettings : StrategySettings
{
    public override Strategy Strategy => Strategy.Symlink;
    public override bool DeploysImage => false;
}

/// <summary>rolling and blue-green: instances behind Cutover's proxy, run by the agent.</summary>
public abstract record InstanceSettings : StrategySettings
{
    private protected InstanceSettings() { }

    public required RunConfig Run { get; init; }
    public required ProxyConfig Proxy { get; init; }
    public InstanceHealthConfig InstanceHealth { get; init; } = new();
    public LogsConfig Logs { get; init; } = new();
    /// <summary>What an instance is: a process group (the default) or a Docker container.</summary>
    public InstanceRuntimeConfig Runtime { get; init; } = new ProcessRuntimeConfig();
    /// <summary>`processes:`: the release's other process types (workers), no port, no proxy; empty without the section.</summary>
    public IReadOnlyList<ProcessTypeConfig> Processes { get; init; } = [];

    public override bool DeploysImage => Runtime.DeploysImage;
    public override Staging.ReleaseSource OpenRelease(string source, string? image, string root) => Runtime.OpenRelease(source, image, root);
}

/// <summary>strategy: rolling: instances replaced in batches.</summary>
public sealed record RollingSettings : InstanceSettings
{
    public override Strategy Strategy => Strategy.Rolling;
    public RollingConfig Rolling { get; init; } = new();
}

/// <summary>strategy: blue-green: a whole new set, switched to at once.</summary>
public sealed record BlueGreenSettings : InstanceSettings
{
    public override Strategy Strategy => Strategy.BlueGreen;
    public BlueGreenConfig BlueGreen { get; init; } = new();
}

/// <summary>strategy: swarm: one Swarm service, updated through a manager's Engine API.</summary>
public sealed record SwarmSettings : StrategySettings
{
    public override Strategy Strategy => Strategy.Swarm;
    public override bool DeploysImage => true;
    public required SwarmConfig Swarm { get; init; }
    /// <summary>A swarm release is the image of its service, recorded in releases/&lt;id&gt;/image for hooks to read.</summary>
    public override Staging.ReleaseSource OpenRelease(string source, string? image, string root) =>
        new(new Containers.ImageArtifact(image ?? Swarm.Image, SwarmImageFile), image ?? Swarm.Image);
    public const string SwarmImageFile = "image";
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
