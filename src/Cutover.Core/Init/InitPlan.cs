namespace Cutover.Init;

/// <summary>
/// What `cutover init` found and will write: the stack, the file that gave it away, why this strategy, the draft, and
/// text to show the user that does not belong in the file (the nginx block for PHP).
/// </summary>
public sealed record InitPlan
{
    /// <summary>node, pm2, laravel, php, dotnet, compose, static, kamal: the names `--from` and the docs use.</summary>
    public required string Stack { get; init; }
    /// <summary>The file (relative to the project) the stack was recognised by.</summary>
    public required string Evidence { get; init; }
    public required string Strategy { get; init; }
    public required string StrategyReason { get; init; }
    public required ConfigDraft Draft { get; init; }
    /// <summary>Printed after the summary, never written into cutover.yml.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
    /// <summary>Source fields with no Cutover equivalent, also written as a comment in the file.</summary>
    public IReadOnlyList<string> Unmapped { get; init; } = [];
}

/// <summary>A project `init` cannot describe (an ecosystem file node cannot evaluate, a compose file with no service).</summary>
public sealed class InitException(string message, bool environment = false) : Exception(message)
{
    /// <summary>True when the machine is at fault (no `node`, a timeout), not the project: exit 1 rather than 2.</summary>
    public bool Environment { get; } = environment;
}

/// <summary>`cutover init --strategy`: the detected plan moved to another strategy, or refused when it cannot be.</summary>
public static class StrategyOverride
{
    public static readonly IReadOnlyList<string> Names = ["symlink", "rolling", "blue-green", "swarm"];

    private static readonly string[] InstanceKeys = ["runtime", "docker", "run", "proxy", "processes", "logs", "rolling"];

    public static InitPlan Apply(InitPlan plan, string strategy)
    {
        if (!Names.Contains(strategy))
            throw new InitException($"--strategy '{strategy}' is not one of {string.Join(", ", Names)}");
        if (strategy == plan.Strategy) return plan;
        var draft = plan.Draft;
        var instances = plan.Strategy is "rolling" or "blue-green";
        var reason = $"--strategy {strategy} (detected: {plan.Strategy}, because {plan.StrategyReason})";
        switch (strategy)
        {
            case "rolling" or "blue-green" when instances:
                draft.Remove("rolling");
                break;
            case "rolling" or "blue-green":
                throw new InitException($"--strategy {strategy} runs the app as instances, and a {plan.Stack} project has no command to run; " +
                                        "use the detected strategy, or write run.command and proxy.listen yourself");
            case "symlink" when instances && draft["runtime"] is null:
                // Files only: the process is someone else's to run (systemd, PM2), so run/proxy/health.path go.
                foreach (var key in InstanceKeys) draft.Remove(key);
                draft.Remove("health");
                draft.Header.Add("With strategy: symlink your own supervisor runs the app from current/ and restarts it after the switch (hooks.after_switch).");
                break;
            case "symlink":
                throw new InitException($"--strategy symlink deploys files, and this {plan.Stack} project deploys {(draft["runtime"] is not null ? "images" : "services")}");
            case "swarm":
                throw new InitException($"--strategy swarm needs a compose service with deploy: replicas and update_config; use `cutover init --from compose FILE`");
        }
        draft.Set("strategy", strategy);
        draft.Header[1] = $"strategy: {strategy} because {reason}.";
        return plan with { Strategy = strategy, StrategyReason = reason };
    }
}
