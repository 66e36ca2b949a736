using Cutover.Config;

namespace Cutover.Supervisor;

/// <summary>
/// The app's own environment variables: what every instance gets (before the per-instance PORT, CUTOVER_INSTANCE,
/// ...) and what `cutover exec` runs a one-off command with. One place, so both always agree (env_file and secrets
/// belong here).
/// </summary>
public static class AppEnvironment
{
    public static IReadOnlyDictionary<string, string> Of(RunConfig run) => run.Env;

    /// <summary>For a config of any strategy: only rolling and blue-green have `run.env`.</summary>
    public static IReadOnlyDictionary<string, string> Of(CutoverConfig config) =>
        config.Settings is InstanceSettings instances ? Of(instances.Run) : new Dictionary<string, string>();
}
