using Cutover.Config;
using Cutover.Releases;
using Cutover.Staging;

namespace Cutover.Deploy;

/// <summary>
/// `cutover deploy --env-only`: a new release whose files (or image) are the live release's, with the environment the
/// config resolves now. It goes through the ordinary pipeline, so every strategy rolls onto it by its own rules
/// (rolling in batches, blue-green's switch, swarm's update, symlink's rename with its hooks), and a rollback returns
/// to the release before it, environment included. The files cost little: the stager hard-links what the live release
/// already holds.
/// </summary>
public static class EnvOnlyRelease
{
    public sealed record Source(ReleaseSource Release, string Path, string? Revision);

    public static Source Open(CutoverConfig config)
    {
        var layout = new RootLayout(config.Root);
        var live = new CurrentLink(layout).Read()
            ?? throw new InputException($"--env-only deploys the live release again with the new environment, and nothing is live in {config.Root}; deploy a release first");
        var record = new ReleaseStore(layout).Find(live)
            ?? throw new InputException($"--env-only: the live release {live} has no readable record in {layout.Records}; deploy a release instead");
        var dir = layout.ReleaseDir(live);
        if (config.Settings.DeploysImage)
        {
            var image = record.Image ?? throw new InputException($"--env-only: the live release {live} records no image; deploy one with --image");
            return new Source(config.Settings.OpenRelease(dir, image, config.Root), dir, record.Revision);
        }
        // The live release's shared paths are symlinks into shared/ (outside the release): the pipeline links them again.
        var shared = new HashSet<string>([.. config.Shared.Files, .. config.Shared.Dirs], StringComparer.Ordinal);
        return new Source(new ReleaseSource(new Described(new DirectoryArtifact(dir, shared), $"release {live} (--env-only)"), null), dir, record.Revision);
    }

    /// <summary>The live release's files under a name that says what they are in the progress and the record.</summary>
    private sealed class Described(IArtifactSource inner, string description) : IArtifactSource
    {
        public string Description => description;
        public IEnumerable<ArtifactEntry> Entries(CancellationToken cancellationToken) => inner.Entries(cancellationToken);
    }
}
