using System.Reflection;

namespace Cutover;

/// <summary>
/// The one place Cutover's version is read: the assembly's informational version (Directory.Build.props' Version, plus
/// the SDK's +commit suffix). The agent reports it (`cutover agent --version`, `status`), the CLI compares it with its
/// own before a deploy, and a fleet host's install directory is named after it (SelfContainedBuild).
/// </summary>
public static class CutoverVersion
{
    /// <summary>
    /// For tests only: a build that says it is another version, so an upgrade between "two versions" can be tested with
    /// one build (a wrapper script sets it for the "new" binary). Read once per process; never set in production.
    /// </summary>
    public const string OverrideVariable = "CUTOVER_VERSION_OVERRIDE";

    /// <summary>What this build was built as, whatever the environment says.</summary>
    public static string Built { get; } =
        typeof(CutoverVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";

    /// <summary>The version this process runs as: <see cref="Built"/>, unless the test override is set.</summary>
    public static string Current { get; } =
        Environment.GetEnvironmentVariable(OverrideVariable) is { Length: > 0 } overridden ? overridden : Built;
}
