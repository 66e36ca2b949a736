using Cutover.Platform;

namespace Cutover.Cli.Commands;

/// <summary>
/// The published `cutover` is Native AOT (issue 14: everyday commands under 100 ms; bench/README.md, "Start-up"). It
/// runs `status`, `releases`, `rollback`, `probe` and `--version` itself. Every other command, and those with what
/// needs the JIT (hosts:, strategy: swarm, `rollback --json`), is run by the JIT build published beside it
/// (<c>jit/cutover</c>) through execve: the same pid, arguments, terminal and signals, before anything has changed.
/// The agent is one of those: its ASP.NET Core endpoints, YARP, Docker.DotNet and its reflection JSON are not AOT-safe.
/// </summary>
public static class NativeBuild
{
    /// <summary>Where the JIT build sits relative to the native binary (Cutover.csproj publishes it there).</summary>
    public const string JitDirectory = Cutover.Fleet.SelfContainedBuild.JitDirectory;

    private static readonly HashSet<string> RunsNatively = ["status", "releases", "rollback", "probe"];

    public static bool IsNative => !JitOnly.IsAvailable;

    /// <summary>
    /// Whether this native binary runs <paramref name="args"/> itself. Anything it cannot read for certain (a response
    /// file, an option it does not know before the command) is the JIT build's, which runs every command.
    /// </summary>
    public static bool RunsItself(IReadOnlyList<string> args)
    {
        if (args is ["--version"]) return true;
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            if (arg is "-c" or "--config") { i++; continue; }
            if (arg.StartsWith("--config=", StringComparison.Ordinal) || arg is "-v" or "--verbose") continue;
            if (arg.StartsWith('-') || arg.StartsWith('@')) return false;
            if (!RunsNatively.Contains(arg)) return false;
            // rollback --json ends with the rollback's result line, whose contract only the JIT build has.
            return !(arg == "rollback" && args.Skip(i + 1).Contains("--json"));
        }
        return false;
    }

    /// <summary>Becomes the JIT build with this process's arguments; never returns (a missing build is exit 1).</summary>
    public static int HandOver()
    {
        var jit = Path.Combine(AppContext.BaseDirectory, JitDirectory, "cutover");
        if (!File.Exists(jit))
        {
            Console.Error.WriteLine($"error: this command runs in the JIT build of cutover, expected at {jit}; publish Cutover again (README, \"Install\")");
            return ExitCodes.Failed;
        }
        var environment = new Dictionary<string, string>();
        foreach (System.Collections.DictionaryEntry variable in Environment.GetEnvironmentVariables())
            environment[(string)variable.Key] = (string?)variable.Value ?? "";
        ProcessImage.Replace(jit, [jit, .. Environment.GetCommandLineArgs().Skip(1)], environment, Environment.CurrentDirectory);
        return ExitCodes.Failed; // not reached: Replace returns only by throwing
    }
}
