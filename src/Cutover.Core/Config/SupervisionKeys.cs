namespace Cutover.Config;

/// <summary>
/// The supervision keys `run:` and every `processes:` type share (stop_signal, ready_timeout, kill_timeout, max_memory,
/// restart.min_uptime, restart.max_restarts): one reader, so the web process and a worker cannot drift apart in names,
/// defaults or limits. The caller reads stop_signal and the restart section where its own error order wants them.
/// </summary>
internal static class SupervisionKeys
{
    private static readonly (string, (string, int))[] Signals =
        new (string, int)[] { ("SIGINT", 2), ("SIGTERM", 15), ("SIGQUIT", 3), ("SIGHUP", 1), ("SIGUSR1", 10), ("SIGUSR2", 12), ("SIGWINCH", 28) }
            .Select(s => (s.Item1, s)).ToArray();

    public static (string Name, int Number) StopSignal(YamlSection section, InstanceRuntimeConfig runtime) =>
        section.Choice("stop_signal", runtime.DefaultStopSignal, Signals);

    /// <summary><paramref name="run"/> with the section's supervision keys; `restart` is the section's `restart:` mapping, if any.</summary>
    public static RunConfig Apply(RunConfig run, YamlSection section, YamlSection? restart, (string Name, int Number) signal, InstanceRuntimeConfig runtime) => run with
    {
        ReadyTimeout = section.Duration("ready_timeout", TimeSpan.FromSeconds(30), min: TimeSpan.FromMilliseconds(1)),
        StopSignal = signal.Number,
        StopSignalName = signal.Name,
        KillTimeout = section.Duration("kill_timeout", runtime.DefaultKillTimeout),
        MaxMemory = section.Has("max_memory") ? section.Size("max_memory", 0) : null,
        MinUptime = restart?.Duration("min_uptime", TimeSpan.FromSeconds(1)) ?? TimeSpan.FromSeconds(1),
        MaxRestarts = restart?.Int("max_restarts", 16, min: 0) ?? 16,
    };
}
