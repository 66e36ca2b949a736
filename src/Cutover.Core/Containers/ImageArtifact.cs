using System.Text;
using Cutover.Staging;

namespace Cutover.Containers;

/// <summary>
/// The artifact of a container release: no files, just the image it runs, kept as IMAGE in the release
/// directory so that a rollback, a restart and `cutover releases` all know what ran.
/// </summary>
/// <param name="fileName">The file in the release directory: IMAGE for runtime: docker; `image` for swarm, whose hooks read it by that name.</param>
public sealed class ImageArtifact(string image, string fileName = ContainerRelease.ImageFile) : IArtifactSource
{
    public string Image { get; } = image;
    public string Description => $"image {Image}";

    public IEnumerable<ArtifactEntry> Entries(CancellationToken cancellationToken)
    {
        var bytes = Encoding.UTF8.GetBytes(Image + "\n");
        yield return new ArtifactEntry
        {
            Path = fileName,
            Kind = EntryKind.File,
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead,
            ModifiedUtc = DateTime.UtcNow,
            Size = bytes.Length,
            OpenContent = () => new MemoryStream(bytes),
        };
    }
}
