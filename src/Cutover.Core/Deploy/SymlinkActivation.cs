using Cutover.Progress;
using Cutover.Releases;

namespace Cutover.Deploy;

/// <summary>
/// strategy: symlink. The pipeline's `current` rename is the whole activation: the web server follows the link,
/// so there is no traffic to move before it or to take back apart from it.
/// </summary>
public sealed class SymlinkActivation : IReleaseActivation
{
    public string Step => "the switch";

    public bool MovesTrafficItself => false;

    public Task<ActivationResult> GoLiveAsync(PreparedRelease release, CancellationToken cancellationToken) => Task.FromResult(ActivationResult.Live);

    public Task<ActivationUndo> UndoAsync(PreparedRelease release, CancellationToken cancellationToken) => Task.FromResult(ActivationUndo.Done);

    public Task<string?> RollBackAsync(ReleaseId from, ReleaseRecord target, PhaseClock clock, CancellationToken cancellationToken) => Task.FromResult<string?>(null);
}
