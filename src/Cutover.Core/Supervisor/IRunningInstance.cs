using System.Net;

namespace Cutover.Supervisor;

/// <summary>
/// A started instance, whatever runs it: a process group (<see cref="InstanceProcess"/>) or a container
/// (<see cref="Containers.ContainerInstance"/>). Supervision, readiness, draining and the rolling and blue-green
/// logic only ever see this.
/// </summary>
public interface IRunningInstance : IAsyncDisposable
{
    /// <summary>The host pid: the process group leader, or the container's init.</summary>
    int Pid { get; }
    /// <summary>How people find it: "pid 1234", or "container 3f2a1b9c (pid 1234)".</summary>
    string Description { get; }
    DateTimeOffset Started { get; }
    Task Exited { get; }
    bool HasExited { get; }
    int? ExitCode { get; }
    /// <summary>"exited with code N", with the last stderr line when there is one.</summary>
    string ExitDescription(string? when = null);
    /// <summary>Where the proxy and the probes reach it: 127.0.0.1:port, or the container's address and port.</summary>
    IPEndPoint Endpoint { get; }
    /// <summary>READY=1 or process.send('ready'), for the readiness kinds that wait for a word from the app; else null.</summary>
    Task? ReadySignal { get; }
    /// <summary>The app said STOPPING=1.</summary>
    bool SaysStopping { get; }
    /// <summary>A healthcheck of the runtime's own (a container HEALTHCHECK): null when healthy or when there is none.</summary>
    Task<string?> HealthProblemAsync(CancellationToken cancellationToken);
    Task StopAsync(int signal, TimeSpan killTimeout);
    long RssBytes();
    /// <summary>
    /// Stops following it and leaves it running, for a runtime whose instances outlive the agent (a container, which
    /// the next agent adopts by its labels). Nothing to do for an instance that cannot outlive the agent.
    /// </summary>
    ValueTask LetGoAsync() => ValueTask.CompletedTask;
}

/// <summary>Starts instances: processes, or containers.</summary>
public interface IInstanceLauncher
{
    Task<IRunningInstance> StartAsync(InstanceSpec spec, Action<string, string> onOutput, CancellationToken cancellationToken);
}

/// <summary>Instances as process groups on this machine.</summary>
public sealed class ProcessLauncher(object spawnGate) : IInstanceLauncher
{
    public Task<IRunningInstance> StartAsync(InstanceSpec spec, Action<string, string> onOutput, CancellationToken cancellationToken) =>
        Task.FromResult<IRunningInstance>(InstanceProcess.Start(spec, spawnGate, onOutput));
}
