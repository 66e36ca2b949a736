using System.CommandLine;
using Cutover.Config;

namespace Cutover.Cli.Commands;

/// <summary>Options shared by several commands, defined once so they parse and read the same everywhere.</summary>
public sealed class CommonOptions
{
    public Option<string[]> Config { get; } = new("--config", "-c")
    {
        Description = "The config file; give -c more than once to layer files (later ones override earlier ones key by key, e.g. -c cutover.yml -c cutover.production.yml)",
        DefaultValueFactory = _ => [ConfigLoader.DefaultFileName],
        Recursive = true,
    };

    /// <summary>The -c files in order.</summary>
    public IReadOnlyList<string> ConfigFiles(ParseResult parse) => parse.GetValue(Config) is { Length: > 0 } files ? files : [ConfigLoader.DefaultFileName];

    /// <summary>
    /// The (layered) config. Only `cutover deploy` resolves env_file and ${VAR} (<paramref name="resolveEnvironment"/>):
    /// every other command works without the deploy's secrets, and the agent takes a release's environment from
    /// the env file its deploy wrote.
    /// </summary>
    public CutoverConfig LoadConfig(ParseResult parse, bool resolveEnvironment = false) =>
        ConfigLoader.Load(ConfigFiles(parse), resolveEnvironment);

    /// <summary>For commands that read or write exactly one file (init).</summary>
    public string SingleConfigFile(ParseResult parse, string command) =>
        ConfigFiles(parse) is [var one] ? one : throw new UsageException($"`cutover {command}` takes one -c file, not {ConfigFiles(parse).Count}");

    public Option<bool> Verbose { get; } = new("--verbose", "-v")
    {
        Description = "Log what Cutover decides and why (recovery, hard-link base, pruning) to stderr",
        Recursive = true,
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Machine-readable output: JSON (NDJSON events for deploy and rollback)",
    };

    public Option<string> LockWait { get; } = new("--lock-wait")
    {
        Description = "How long to wait for another deploy or rollback on the same root (e.g. 30s); default: fail at once",
        DefaultValueFactory = _ => "0s",
    };

    public Option<bool> AcceptNewHostKeys { get; } = new("--accept-new-host-keys")
    {
        Description = "With hosts: record the key of a host not yet in known_hosts instead of refusing it (a changed key is always refused)",
    };

    /// <summary>
    /// On a fleet host: the roles the deployer says this host has (hidden: `remote session` and `rollback` get it from
    /// the fleet's commands, people never type it). Absent: not a fleet host, every role runs.
    /// </summary>
    public Option<string?> HostRoles { get; } = new("--host-roles") { Hidden = true, Description = "This fleet host's roles, comma-separated" };

    public static IReadOnlyList<string>? ParseHostRoles(string? text) =>
        text is null ? null : text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>`--hosts a,b`: with hosts, only these (names as the config writes them).</summary>
    public Option<string?> Hosts { get; } = new("--hosts") { Description = "With hosts: only these hosts (comma-separated names as in the config)" };

    /// <summary>`--roles web,worker`: with hosts, only hosts carrying one of them.</summary>
    public Option<string?> Roles { get; } = new("--roles") { Description = "With hosts: only hosts with one of these roles (comma-separated)" };

    /// <summary>The hosts a command touches: every host, or those --hosts/--roles name; on this machine they are refused.</summary>
    public Cutover.Fleet.HostSelection? Selection(System.CommandLine.ParseResult parse, CutoverConfig config, bool primary = false)
    {
        var (hosts, roles) = (parse.GetValue(Hosts), parse.GetValue(Roles));
        if (config.Fleet is null)
        {
            if (hosts is not null || roles is not null || primary)
                throw new UsageException($"{(hosts is not null ? "--hosts" : roles is not null ? "--roles" : "--primary")} is for configs with hosts; {config.File} deploys on this machine");
            return null;
        }
        return Cutover.Fleet.HostSelection.Parse(config.Fleet, hosts, roles, primary);
    }

    public static TimeSpan ParseLockWait(string text) =>
        Duration.TryParse(text, out var value, out var error)
            ? value
            : throw new UsageException($"--lock-wait: {error}");
}

/// <summary>A mistake on the command line itself.</summary>
public sealed class UsageException(string message) : Exception(message);
