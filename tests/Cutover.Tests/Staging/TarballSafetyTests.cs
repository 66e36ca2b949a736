using System.Formats.Tar;
using System.IO.Compression;
using Cutover.Staging;
using Cutover.Tests.Support;

namespace Cutover.Tests.Staging;

public class TarballSafetyTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Tarball(params TarEntry[] entries)
    {
        var path = _dir.Combine($"artifact-{Guid.NewGuid():N}.tar.gz");
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var writer = new TarWriter(gzip, TarEntryFormat.Pax);
        foreach (var entry in entries) writer.WriteEntry(entry);
        return path;
    }

    private static PaxTarEntry FileEntry(string name, string content = "x")
    {
        var entry = new PaxTarEntry(TarEntryType.RegularFile, name)
        {
            DataStream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(content)),
            Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        };
        return entry;
    }

    private static PaxTarEntry Link(string name, string target, TarEntryType type = TarEntryType.SymbolicLink) =>
        new(type, name) { LinkName = target };

    private ArtifactException Refused(string tarball)
    {
        var release = _dir.Combine("release-" + Guid.NewGuid().ToString("N"));
        var e = Assert.Throws<ArtifactException>(() => new ReleaseStager().Stage(new TarballArtifact(tarball), release, null, CancellationToken.None));
        return e;
    }

    [Fact]
    public void An_absolute_entry_is_refused_and_named()
    {
        var e = Refused(Tarball(FileEntry("ok.txt"), FileEntry("/etc/cron.d/evil")));
        Assert.Contains("'/etc/cron.d/evil'", e.Message);
        Assert.Contains("absolute", e.Message);
        Assert.False(File.Exists("/etc/cron.d/evil"));
    }

    [Theory]
    [InlineData("../escape.txt")]
    [InlineData("public/../../escape.txt")]
    [InlineData("./a/../../escape.txt")]
    public void An_entry_with_dotdot_is_refused(string name)
    {
        var e = Refused(Tarball(FileEntry(name)));
        Assert.Contains("'..'", e.Message);
        Assert.False(File.Exists(_dir.Combine("escape.txt")));
    }

    [Theory]
    [InlineData("public/link", "/etc/passwd")]
    [InlineData("public/link", "../../outside")]
    [InlineData("link", "..")]
    public void A_symlink_pointing_outside_the_release_is_refused(string name, string target)
    {
        var e = Refused(Tarball(Link(name, target)));
        Assert.Contains("outside the release", e.Message);
    }

    [Fact]
    public void An_entry_written_through_an_earlier_symlink_is_refused()
    {
        var e = Refused(Tarball(new PaxTarEntry(TarEntryType.Directory, "real"), Link("alias", "real"), FileEntry("alias/file")));
        Assert.Contains("through the symlink 'alias'", e.Message);
    }

    [Fact]
    public void A_hard_link_to_a_missing_member_is_refused()
    {
        var e = Refused(Tarball(Link("b", "a", TarEntryType.HardLink)));
        Assert.Contains("not earlier in the archive", e.Message);
    }

    [Fact]
    public void A_file_that_is_not_an_archive_is_refused()
    {
        var path = _dir.Combine("broken.tar.gz");
        File.WriteAllBytes(path, [0x1f, 0x8b, 1, 2, 3, 4, 5]);
        var e = Refused(path);
        Assert.Contains("broken.tar.gz", e.Message);
    }

    [Fact]
    public void A_good_archive_keeps_modes_mtimes_symlinks_and_hard_links()
    {
        var mtime = new DateTimeOffset(2024, 3, 4, 5, 6, 7, TimeSpan.Zero);
        var script = FileEntry("./bin/run.sh", "#!/bin/sh\necho hi\n");
        script.Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute;
        script.ModificationTime = mtime;
        var dir = new PaxTarEntry(TarEntryType.Directory, "./bin/") { Mode = (UnixFileMode)Convert.ToInt32("750", 8), ModificationTime = mtime };
        var tarball = Tarball(new PaxTarEntry(TarEntryType.Directory, "./"), dir, script, Link("./bin/run", "run.sh"), Link("./bin/copy.sh", "bin/run.sh", TarEntryType.HardLink));

        var release = _dir.Combine("release");
        var result = new ReleaseStager().Stage(new TarballArtifact(tarball), release, null, CancellationToken.None);

        Assert.Equal("#!/bin/sh\necho hi\n", File.ReadAllText(Path.Combine(release, "bin/run.sh")));
        Assert.Equal(script.Mode, File.GetUnixFileMode(Path.Combine(release, "bin/run.sh")));
        Assert.Equal(mtime.UtcDateTime, File.GetLastWriteTimeUtc(Path.Combine(release, "bin/run.sh")));
        Assert.Equal(dir.Mode, File.GetUnixFileMode(Path.Combine(release, "bin")));
        Assert.Equal(mtime.UtcDateTime, Directory.GetLastWriteTimeUtc(Path.Combine(release, "bin")));
        Assert.Equal("run.sh", new FileInfo(Path.Combine(release, "bin/run")).LinkTarget);
        Assert.Equal(Posix.Inode(Path.Combine(release, "bin/run.sh")), Posix.Inode(Path.Combine(release, "bin/copy.sh")));
        Assert.Equal(1, result.Symlinks);
    }

    [Fact]
    public void A_directory_artifact_with_an_escaping_symlink_is_refused()
    {
        var source = _dir.Combine("src");
        Directory.CreateDirectory(source);
        File.CreateSymbolicLink(Path.Combine(source, "secrets"), "/etc");
        var e = Assert.Throws<ArtifactException>(() => new ReleaseStager().Stage(new DirectoryArtifact(source), _dir.Combine("r"), null, CancellationToken.None));
        Assert.Contains("'secrets'", e.Message);
    }

    [Fact]
    public void A_fifo_in_a_directory_artifact_is_refused_instead_of_blocking()
    {
        var source = _dir.Combine("src");
        Directory.CreateDirectory(source);
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", Path.Combine(source, "pipe"))) mkfifo.WaitForExit();
        var e = Assert.Throws<ArtifactException>(() => new ReleaseStager().Stage(new DirectoryArtifact(source), _dir.Combine("r"), null, CancellationToken.None));
        Assert.Contains("'pipe'", e.Message);
    }
}
