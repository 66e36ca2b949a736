using Cutover.Progress;

namespace Cutover.Deploy;

/// <summary>
/// For strategies whose releases run as processes (rolling): moves the app's running instances to a staged
/// release, leaving the previous release serving when it cannot. The agent client implements it for the CLI;
/// tests can drive an in-process runtime through it.
/// </summary>
public interface IInstanceActivator
{
    /// <summary>Where the move ended: live, not live (the old instances serve), rolled back, paused (mixed) or cancelled.</summary>
    Task<ActivationResult> ActivateAsync(string releaseId, string releaseDir, IDeployProgress progress, CancellationToken cancellationToken);

    /// <summary>Drains and stops the app's instances (a first release that failed its checks after going live); null or why not.</summary>
    Task<string?> StopAsync(IDeployProgress progress, CancellationToken cancellationToken);

    /// <summary>
    /// Holds the app's new requests in the proxy until <see cref="ResumeAsync"/> or <paramref name="timeout"/>. Null when
    /// nothing serves the app yet (no agent, or the app's first release), so there is nothing to hold.
    /// </summary>
    Task<DateTimeOffset?> PauseAsync(TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Releases the held requests to the instances.</summary>
    Task ResumeAsync(CancellationToken cancellationToken);
}
