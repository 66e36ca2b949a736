using Cutover.Staging;
using Cutover.Tests.Support;

namespace Cutover.Tests.Staging;

public class HardLinkTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Source(string name)
    {
        var path = _dir.Combine(name);
        Directory.CreateDirectory(Path.Combine(path, "lib"));
        File.WriteAllText(Path.Combine(path, "lib", "unchanged.php"), "<?php // same in both releases");
        File.WriteAllText(Path.Combine(path, "changed.txt"), "version 1");
        File.CreateSymbolicLink(Path.Combine(path, "alias.php"), "lib/unchanged.php");
        File.SetUnixFileMode(Path.Combine(path, "changed.txt"), (UnixFileMode)Convert.ToInt32("640", 8));
        return path;
    }

    [Fact]
    public void An_unchanged_file_shares_its_inode_and_a_changed_one_does_not()
    {
        var source = Source("src");
        var stager = new ReleaseStager();
        var first = _dir.Combine("releases", "1");
        var firstResult = stager.Stage(new DirectoryArtifact(source), first, null, CancellationToken.None);
        Assert.Equal(0, firstResult.LinkedFiles);

        File.WriteAllText(Path.Combine(source, "changed.txt"), "version 2");
        var second = _dir.Combine("releases", "2");
        var result = stager.Stage(new DirectoryArtifact(source), second, first, CancellationToken.None);

        Assert.Equal(Posix.Inode(Path.Combine(first, "lib/unchanged.php")), Posix.Inode(Path.Combine(second, "lib/unchanged.php")));
        Assert.NotEqual(Posix.Inode(Path.Combine(first, "changed.txt")), Posix.Inode(Path.Combine(second, "changed.txt")));
        Assert.Equal("version 1", File.ReadAllText(Path.Combine(first, "changed.txt")));
        Assert.Equal("version 2", File.ReadAllText(Path.Combine(second, "changed.txt")));
        Assert.Equal(1, result.LinkedFiles);
        Assert.Equal(1, result.CopiedFiles);
    }

    [Fact]
    public void Modes_mtimes_and_symlinks_are_kept()
    {
        var source = Source("src");
        var mtime = new DateTime(2023, 5, 6, 7, 8, 9, DateTimeKind.Utc);
        File.SetLastWriteTimeUtc(Path.Combine(source, "changed.txt"), mtime);
        var release = _dir.Combine("r");
        new ReleaseStager().Stage(new DirectoryArtifact(source), release, null, CancellationToken.None);

        Assert.Equal((UnixFileMode)Convert.ToInt32("640", 8), File.GetUnixFileMode(Path.Combine(release, "changed.txt")));
        Assert.Equal(mtime, File.GetLastWriteTimeUtc(Path.Combine(release, "changed.txt")));
        Assert.Equal("lib/unchanged.php", new FileInfo(Path.Combine(release, "alias.php")).LinkTarget);
    }

    [Fact]
    public void A_file_whose_mode_changed_is_copied_not_linked()
    {
        var source = Source("src");
        var first = _dir.Combine("r1");
        new ReleaseStager().Stage(new DirectoryArtifact(source), first, null, CancellationToken.None);
        File.SetUnixFileMode(Path.Combine(source, "lib/unchanged.php"), (UnixFileMode)Convert.ToInt32("755", 8));
        var second = _dir.Combine("r2");
        new ReleaseStager().Stage(new DirectoryArtifact(source), second, first, CancellationToken.None);
        Assert.NotEqual(Posix.Inode(Path.Combine(first, "lib/unchanged.php")), Posix.Inode(Path.Combine(second, "lib/unchanged.php")));
        Assert.Equal((UnixFileMode)Convert.ToInt32("644", 8), File.GetUnixFileMode(Path.Combine(first, "lib/unchanged.php")) & (UnixFileMode)Convert.ToInt32("777", 8));
    }

    [Fact]
    public void Unchanged_tarball_members_are_linked_too()
    {
        var source = Source("src");
        var tarball = _dir.Combine("a.tar.gz");
        System.Formats.Tar.TarFile.CreateFromDirectory(source, _dir.Combine("a.tar"), includeBaseDirectory: false);
        using (var input = File.OpenRead(_dir.Combine("a.tar")))
        using (var output = new System.IO.Compression.GZipStream(File.Create(tarball), System.IO.Compression.CompressionLevel.Fastest))
            input.CopyTo(output);

        var first = _dir.Combine("r1");
        new ReleaseStager().Stage(new TarballArtifact(tarball), first, null, CancellationToken.None);
        var second = _dir.Combine("r2");
        var result = new ReleaseStager().Stage(new TarballArtifact(tarball), second, first, CancellationToken.None);
        Assert.Equal(2, result.LinkedFiles);
        Assert.Equal(Posix.Inode(Path.Combine(first, "changed.txt")), Posix.Inode(Path.Combine(second, "changed.txt")));
        Assert.Equal("version 1", File.ReadAllText(Path.Combine(second, "changed.txt")));
    }
}
