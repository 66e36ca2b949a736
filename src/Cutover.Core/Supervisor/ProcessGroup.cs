using Cutover.Config;

namespace Cutover.Supervisor;

/// <summary>
/// The slots of one process type of an app on this host: "web" (`run:`, behind the proxy) or a type under `processes:`
/// (no port, no proxy). Each slot holds the instance that currently fills it, or null.
/// </summary>
public sealed class ProcessGroup
{
    public ProcessGroup(string name, RunConfig run, bool singleton, ManagedInstance?[] slots)
    {
        Name = name;
        Run = run;
        Singleton = singleton;
        Slots = slots;
    }

    public string Name { get; }
    /// <summary>How its instances start and stop; replaced when the app is reconfigured.</summary>
    public RunConfig Run { get; internal set; }
    /// <summary>Never two of it at once: every replacement is stop-first.</summary>
    public bool Singleton { get; }
    /// <summary>Replaced by a bigger or smaller array when the type is resized (AppRuntime.ResizeAsync), never resized in place.</summary>
    public ManagedInstance?[] Slots { get; internal set; }
    public bool IsWeb => Name == ProcessConfigReader.Web;

    /// <summary>"web-2" for web's slots, "worker-0" for a type's: the instance id without the app.</summary>
    public string SlotId(string app, int index) => IsWeb ? $"{app}-{index}" : $"{app}-{Name}-{index}";

    /// <summary>How a replacement goes: a singleton is always stopped first, whatever the strategy would do.</summary>
    public RollingOrder OrderFor(RollingOrder configured) => Singleton ? RollingOrder.StopFirst : configured;

    /// <summary>Whether a process type with <paramref name="typeRoles"/> runs on a host with <paramref name="hostRoles"/> (null: no fleet, every role).</summary>
    public static bool RunsOn(IReadOnlyList<string>? hostRoles, IReadOnlyList<string>? typeRoles) =>
        hostRoles is null || typeRoles is null || typeRoles.Any(hostRoles.Contains);
}
