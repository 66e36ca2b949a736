using System.CommandLine;
using Cutover.Config;

namespace Cutover.Cli.Commands;

/// <summary>Options shared by several commands, defined once so they parse and read the same everywhere.</summary>
public sealed class CommonOptions
{
    public Option<string> Config { get; } = new("--config", "-c")
    {
        Description = "The config file",
        DefaultValueFactory = _ => ConfigLoader.DefaultFileName,
        Recursive = true,
    };

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

    public static TimeSpan ParseLockWait(string text) =>
        Duration.TryParse(text, out var value, out var error)
            ? value
            : throw new UsageException($"--lock-wait: {error}");
}

/// <summary>A mistake on the command line itself.</summary>
public sealed class UsageException(string message) : Exception(message);
