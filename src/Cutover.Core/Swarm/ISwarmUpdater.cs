using Cutover.Config;

namespace Cutover.Swarm;

/// <summary>
/// The Swarm service Cutover drives, as <see cref="SwarmActivation"/> needs it: the real one is
/// <see cref="DockerSwarmUpdater"/> (the Engine API); tests put a fake here to reach every outcome in milliseconds.
/// </summary>
public interface ISwarmUpdater
{
    /// <summary>Whether the service exists (a deploy that creates it removes it again to undo a first release).</summary>
    Task<bool> ServiceExistsAsync(CancellationToken cancellationToken);

    /// <summary>Creates or updates the service to run <paramref name="image"/> labelled <paramref name="release"/>, and follows the update to its end.</summary>
    Task<SwarmUpdateOutcome> ApplyAsync(string image, string release, SwarmUpdateConfig updateWith, CancellationToken cancellationToken);

    /// <summary>Removes the service (gone already is fine).</summary>
    Task RemoveServiceAsync(CancellationToken cancellationToken);

    /// <summary>Asks Swarm to put back the service's PreviousSpec: what ran before Cutover's first release.</summary>
    Task RestorePreviousSpecAsync(CancellationToken cancellationToken);
}
