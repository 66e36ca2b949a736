namespace Cutover.Config;

/// <summary>
/// The `strategy:` of a config: a closed set of four, compared by identity, never by its name. What a strategy
/// reads is in <see cref="StrategyKeys"/>; what it was configured with is its <see cref="StrategySettings"/>.
/// </summary>
public sealed class Strategy
{
    public static readonly Strategy Symlink = new("symlink", runsInstances: false);
    public static readonly Strategy Rolling = new("rolling", runsInstances: true);
    public static readonly Strategy BlueGreen = new("blue-green", runsInstances: true);
    public static readonly Strategy Swarm = new("swarm", runsInstances: false);

    public static IReadOnlyList<Strategy> All { get; } = [Symlink, Rolling, BlueGreen, Swarm];

    private Strategy(string name, bool runsInstances)
    {
        Name = name;
        RunsInstances = runsInstances;
    }

    /// <summary>The word in cutover.yml.</summary>
    public string Name { get; }

    /// <summary>Releases run as instances under the agent, behind Cutover's proxy.</summary>
    public bool RunsInstances { get; }

    public static Strategy? Named(string name) => All.FirstOrDefault(s => s.Name == name);

    public override string ToString() => Name;
}

/// <summary>
/// The keys that only some strategies read, and which. The loader refuses such a key under any other strategy,
/// at the key's line, naming the strategies that do read it: nothing in a config is accepted and ignored.
/// </summary>
public static class StrategyKeys
{
    /// <summary>Full key (a.b for a key inside section a) -> the strategies that read it.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<Strategy>> UsedBy { get; } = new Dictionary<string, IReadOnlyList<Strategy>>
    {
        ["run"] = [Strategy.Rolling, Strategy.BlueGreen],
        ["proxy"] = [Strategy.Rolling, Strategy.BlueGreen],
        ["logs"] = [Strategy.Rolling, Strategy.BlueGreen],
        ["runtime"] = [Strategy.Rolling, Strategy.BlueGreen],
        // Process types run under the agent beside the web instances; symlink runs nothing, swarm is one service.
        ["processes"] = [Strategy.Rolling, Strategy.BlueGreen],
        ["docker"] = [Strategy.Rolling, Strategy.BlueGreen],
        // Only RollingUpdate reads it: a blue-green switch moves the whole set at once.
        ["rolling"] = [Strategy.Rolling],
        ["blue_green"] = [Strategy.BlueGreen],
        ["router"] = [Strategy.Rolling, Strategy.BlueGreen],
        ["nginx"] = [Strategy.BlueGreen],
        ["haproxy"] = [Strategy.Rolling, Strategy.BlueGreen],
        ["swarm"] = [Strategy.Swarm],
        // Linked into releases/<id>/, which a swarm task never sees.
        ["shared"] = [Strategy.Symlink, Strategy.Rolling, Strategy.BlueGreen],
        // Build hooks run in a release directory of files; a swarm release is an image, built before the deploy.
        ["hooks.build"] = [Strategy.Symlink, Strategy.Rolling, Strategy.BlueGreen],
        // The check of each instance; symlink and swarm have only the check after the switch (url, expect_status, ...).
        ["health.path"] = [Strategy.Rolling, Strategy.BlueGreen],
        ["health.start_period"] = [Strategy.Rolling, Strategy.BlueGreen],
        ["hosts[].proxy_listen"] = [Strategy.Rolling, Strategy.BlueGreen],
    };

    public static bool Uses(this Strategy strategy, string key) => !UsedBy.TryGetValue(key, out var users) || users.Contains(strategy);

    public static string NotUsed(Strategy strategy, string key) =>
        $"not used by strategy: {strategy.Name} (used by: {string.Join(", ", UsedBy[key].Select(s => s.Name))})";
}
