namespace Cutover.Config;

/// <summary>
/// The app's environment, for every process it runs (instances, and hooks of every strategy): top-level `env:` over
/// the variables of `env_file:`, resolved where `cutover deploy` runs. <see cref="Secrets"/> are the values that came
/// from env_file or a ${VAR} (literal values in cutover.yml are committed anyway); they are written only to the
/// release's 0600 env file and shown nowhere else (<see cref="Redactor"/>).
/// </summary>
public sealed record AppEnvironment
{
    public static readonly AppEnvironment Empty = new();

    public IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>(StringComparer.Ordinal);
    public IReadOnlyCollection<string> Secrets { get; init; } = [];

    /// <summary>
    /// True when the config was read without resolving `env:` (the agent, which has not the deployer's environment:
    /// it takes a release's variables from that release's env file instead).
    /// </summary>
    public bool Deferred { get; init; }

    /// <summary>The env_file read, as a full path; null without one (or when deferred).</summary>
    public string? EnvFile { get; init; }

    public Redactor Redactor => new(Secrets);

    /// <summary>
    /// <paramref name="config"/> with this environment under what each runtime passes to its processes: run.env
    /// (processes), docker.env (containers) and swarm's env (the service), whose own entries win. So run.env keeps
    /// working as before, as the per-process layer over the app's environment. Hooks take it from Config.Environment.
    /// </summary>
    public CutoverConfig ApplyTo(CutoverConfig config)
    {
        var settings = config.Settings switch
        {
            InstanceSettings instances => instances.Runtime is DockerConfig docker
                ? WithRun(instances, docker with { Env = Over(docker.Env) })
                : WithRun(instances, instances.Runtime),
            SwarmSettings swarm => swarm with { Swarm = swarm.Swarm with { Env = Over(swarm.Swarm.Env) } },
            var other => other,
        };
        return config with { Environment = this, Settings = settings };

        StrategySettings WithRun(InstanceSettings instances, InstanceRuntimeConfig runtime) => instances switch
        {
            RollingSettings rolling => rolling with { Run = rolling.Run with { Env = Over(rolling.Run.Env) }, Processes = WithEnv(rolling.Processes), Runtime = runtime },
            BlueGreenSettings blueGreen => blueGreen with { Run = blueGreen.Run with { Env = Over(blueGreen.Run.Env) }, Processes = WithEnv(blueGreen.Processes), Runtime = runtime },
            _ => instances,
        };

        // Every process type too: a worker needs the app's environment (its database URL, its secrets) as web does.
        IReadOnlyList<ProcessTypeConfig> WithEnv(IReadOnlyList<ProcessTypeConfig> processes) =>
            processes.Select(p => p with { Run = p.Run with { Env = Over(p.Run.Env) } }).ToList();
    }

    private Dictionary<string, string> Over(IReadOnlyDictionary<string, string> own)
    {
        var merged = new Dictionary<string, string>(Variables, StringComparer.Ordinal);
        foreach (var (key, value) in own) merged[key] = value;
        return merged;
    }

}

/// <summary>
/// Replaces every secret value in a text by `***`. Values shorter than <see cref="MinimumLength"/> are left alone: a
/// secret of one to three characters (a `1`, `on`, `dev`) would turn every digit or common word of the output into
/// `***` and make it useless, and is no secret worth the name. Longer values are replaced first, so a secret that
/// contains another is not half shown.
/// </summary>
public sealed class Redactor
{
    public const int MinimumLength = 4;
    public const string Mask = "***";
    public static readonly Redactor None = new([]);

    private readonly string[] _values;

    public Redactor(IEnumerable<string> secrets)
    {
        // A JSON file stores a value escaped ("a\"b", \u002B), so the escaped form is hidden as well.
        _values = secrets.Where(s => s.Length >= MinimumLength)
            .SelectMany(s => new[] { s, System.Text.Json.JsonEncodedText.Encode(s).ToString(), System.Text.Json.JsonEncodedText.Encode(s, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping).ToString() })
            .Distinct(StringComparer.Ordinal)
            .OrderByDescending(s => s.Length)
            .ToArray();
    }

    public bool IsEmpty => _values.Length == 0;

    public string Redact(string text)
    {
        foreach (var value in _values)
            if (text.Contains(value, StringComparison.Ordinal)) text = text.Replace(value, Mask, StringComparison.Ordinal);
        return text;
    }

    public string? RedactOrNull(string? text) => text is null ? null : Redact(text);
}
