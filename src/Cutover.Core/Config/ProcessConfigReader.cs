namespace Cutover.Config;

/// <summary>
/// One entry of `processes:`: another process type of the same release beside the web process (`run:`), with no port
/// and no proxy. Its <see cref="Run"/> is the web process's run section with this type's own command, count, stop and
/// readiness, so whatever builds the web instances' environment builds a worker's too (minus the port variable).
/// </summary>
public sealed record ProcessTypeConfig
{
    public required string Name { get; init; }
    public required RunConfig Run { get; init; }
    /// <summary>Never two instances at once: replaced stop-first, always exactly one instance.</summary>
    public bool Singleton { get; init; }
    /// <summary>Runs only on hosts with one of these roles; null runs it on every host.</summary>
    public IReadOnlyList<string>? Roles { get; init; }
}

/// <summary>
/// Reads `processes:` (rolling and blue-green; with runtime: docker each instance is a container of the release's image
/// running the type's command). Every key is read here.
/// </summary>
public static class ProcessConfigReader
{
    /// <summary>The name of the web process (`run:`), as instance ids, logs and roles use it.</summary>
    public const string Web = "web";

    public static IReadOnlyList<ProcessTypeConfig> Read(YamlSection top, RunConfig web, InstanceRuntimeConfig runtime)
    {
        var section = top.Section("processes");
        if (section is null) return [];
        var types = new List<ProcessTypeConfig>();
        foreach (var name in section.Keys.ToList())
        {
            section.Has(name); // every name is a process type: known, even one refused below
            if (name == Web)
            {
                section.KeyError(name, "'web' is the process of `run:`; give this process type another name");
                continue;
            }
            if (!IsSafeName(name))
            {
                section.KeyError(name, $"'{name}' may only contain lower-case letters, digits, '_' and '-', starting with a letter");
                continue;
            }
            var before = section.Errors.Count;
            if (section.Section(name) is not { } type)
            {
                // A scalar or list is refused by Section itself; an empty value is not, and must not pass as nothing.
                if (section.Errors.Count == before) section.Error(name, "must be a mapping with at least 'command'");
                continue;
            }
            types.Add(ReadType(name, type, web, runtime));
        }
        section.RejectUnknownKeys();
        return types;
    }

    private static ProcessTypeConfig ReadType(string name, YamlSection section, RunConfig web, InstanceRuntimeConfig runtime)
    {
        var signal = SupervisionKeys.StopSignal(section, runtime);
        var singleton = section.Choice("singleton", false, ("true", true), ("false", false));
        var instances = section.Int("instances", 1, min: 1, max: 256);
        if (singleton && instances != 1) section.Error("instances", $"a singleton runs exactly one instance; got {instances}");
        var restart = section.Section("restart");
        var ready = section.Choice("ready", ReadinessKind.None,
            ("notify", ReadinessKind.Notify), ("message", ReadinessKind.Message), ("none", ReadinessKind.None));
        // A container gets no NOTIFY_SOCKET or IPC channel: it is ready once alive for min_uptime.
        if (!runtime.PassesReadySignals && ready != ReadinessKind.None)
            section.Error("ready", $"with runtime: {runtime.Name} a process type is ready: none (alive for restart.min_uptime)");
        // ready: none waits for min_uptime, not for a word: a ready_timeout would be read by nothing.
        if (ready == ReadinessKind.None && section.Has("ready_timeout"))
            section.KeyError("ready_timeout", "read only with ready: notify or message; ready: none is ready once alive for restart.min_uptime");
        IReadOnlyList<string>? roles = null;
        if (section.Has("roles"))
        {
            roles = section.StringList("roles").Select(n => n.Value!).ToList();
            if (roles.Count == 0) section.Error("roles", "name at least one role, or leave 'roles' out to run it on every host");
        }
        var run = SupervisionKeys.Apply(web with
        {
            Command = section.RequiredString("command"),
            Instances = instances,
            Ready = ready,
        }, section, restart, signal, runtime);
        restart?.RejectUnknownKeys();
        section.RejectUnknownKeys();
        return new ProcessTypeConfig { Name = name, Run = run, Singleton = singleton, Roles = roles };
    }

    private static bool IsSafeName(string name) =>
        name.Length is > 0 and <= 32 && char.IsAsciiLetterLower(name[0]) && name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '_' or '-');
}
