using System.Diagnostics;
using Cutover.Staging;
using Cutover.Tests.Support;

namespace Cutover.Tests.Staging;

/// <summary>
/// A file is reused from an earlier release only when its content is identical: metadata can neither make a changed
/// file look unchanged (reproducible builds: every mtime the same) nor keep identical content apart (CI builds: every
/// mtime new).
/// </summary>
public class ContentReuseTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _root;

    public ContentReuseTests()
    {
        _root = _dir.Combine("root");
        AppFactory.WriteConfig(_dir.Path, _root);
    }

    public void Dispose() => _dir.Dispose();

    private Task<CliResult> Cli(params string[] args) => CutoverCli.RunAsync(_dir.Path, args);

    private string Build(string name, string version)
    {
        var dir = _dir.Combine(name);
        Directory.CreateDirectory(Path.Combine(dir, "public"));
        File.WriteAllText(Path.Combine(dir, "config.txt"), $"version={version}\n");
        File.WriteAllText(Path.Combine(dir, "public", "index.html"), "<h1>same in every build</h1>\n");
        return dir;
    }

    private static void Run(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{file} {string.Join(' ', args)}: {stderr}");
    }

    private string Current(string path) => Path.Combine(_root, "current", path);
    private string ReleaseFile(string id, string path) => Path.Combine(_root, "releases", id, path);
    private static string ReleaseOf(CliResult result) =>
        System.Text.RegularExpressions.Regex.Match(result.Stdout, @"release (\d{8}_\d{6}(_\d+)?)").Groups[1].Value;

    [Fact]
    public async Task A_reproducible_build_with_every_mtime_at_zero_goes_live_with_its_new_content()
    {
        // The issue's repro: same size, same mtime (tar --mtime=@0), same mode, different content.
        Run("tar", "--mtime=@0", "-czf", _dir.Combine("a1.tar.gz"), "-C", Build("b1", "1.0.1"), ".");
        Run("tar", "--mtime=@0", "-czf", _dir.Combine("a2.tar.gz"), "-C", Build("b2", "1.0.2"), ".");

        var first = await Cli("deploy", _dir.Combine("a1.tar.gz"));
        Assert.True(first.ExitCode == 0, first.All);
        var second = await Cli("deploy", _dir.Combine("a2.tar.gz"));
        Assert.True(second.ExitCode == 0, second.All);

        Assert.Equal("version=1.0.2\n", File.ReadAllText(Current("config.txt")));
        Assert.Equal("version=1.0.1\n", File.ReadAllText(ReleaseFile(ReleaseOf(first), "config.txt")));
        // The file whose content did not change is still shared, and the progress line says what happened.
        Assert.Equal(Posix.Inode(ReleaseFile(ReleaseOf(first), "public/index.html")), Posix.Inode(Current("public/index.html")));
        Assert.Contains("2 files, 1 shared with earlier releases, 1 written", second.Stdout);
    }

    [Fact]
    public async Task Identical_content_with_fresh_mtimes_shares_one_inode()
    {
        var source = Build("ci", "2.0.0");
        var first = await Cli("deploy", source);
        Assert.True(first.ExitCode == 0, first.All);

        // A CI rebuild: every file written again, new mtimes, the same bytes.
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories))
        {
            File.WriteAllBytes(file, File.ReadAllBytes(file));
            File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddMinutes(5));
        }
        var second = await Cli("deploy", source);
        Assert.True(second.ExitCode == 0, second.All);

        foreach (var path in new[] { "config.txt", "public/index.html" })
            Assert.Equal(Posix.Inode(ReleaseFile(ReleaseOf(first), path)), Posix.Inode(Current(path)));
        Assert.Contains("2 files, 2 shared with earlier releases, 0 written", second.Stdout);
        // The content index the next deploy (and a fleet host) reads describes the release as it went live.
        Assert.True(File.Exists(Path.Combine(_root, ".cutover", "hashes", ReleaseOf(second) + ".json")));
    }

    [Fact]
    public void Equal_size_mtime_and_mode_with_different_content_in_a_directory_artifact_is_written_not_linked()
    {
        var mtime = new DateTime(2020, 1, 1, 0, 0, 0, DateTimeKind.Utc);
        var source = Build("dir", "1.0.1");
        foreach (var file in Directory.EnumerateFiles(source, "*", SearchOption.AllDirectories)) File.SetLastWriteTimeUtc(file, mtime);
        var first = _dir.Combine("r1");
        new ReleaseStager().Stage(new DirectoryArtifact(source), first, null, CancellationToken.None);

        File.WriteAllText(Path.Combine(source, "config.txt"), "version=1.0.2\n");
        File.SetLastWriteTimeUtc(Path.Combine(source, "config.txt"), mtime);
        var second = _dir.Combine("r2");
        var result = new ReleaseStager().Stage(new DirectoryArtifact(source), second, first, CancellationToken.None);

        Assert.Equal("version=1.0.2\n", File.ReadAllText(Path.Combine(second, "config.txt")));
        Assert.Equal("version=1.0.1\n", File.ReadAllText(Path.Combine(first, "config.txt")));
        Assert.NotEqual(Posix.Inode(Path.Combine(first, "config.txt")), Posix.Inode(Path.Combine(second, "config.txt")));
        Assert.Equal((1, 1), (result.LinkedFiles, result.CopiedFiles));
    }

    [Fact]
    public void Identical_content_is_shared_whatever_its_path_and_the_shared_inode_is_read_only()
    {
        var source = Build("moved", "3.0.0");
        var first = _dir.Combine("r1");
        new ReleaseStager().Stage(new DirectoryArtifact(source), first, null, CancellationToken.None);
        Directory.CreateDirectory(Path.Combine(source, "assets"));
        File.Move(Path.Combine(source, "public", "index.html"), Path.Combine(source, "assets", "home.html"));

        var second = _dir.Combine("r2");
        new ReleaseStager().Stage(new DirectoryArtifact(source), second, first, CancellationToken.None);

        Assert.Equal(Posix.Inode(Path.Combine(first, "public/index.html")), Posix.Inode(Path.Combine(second, "assets/home.html")));
        var mode = File.GetUnixFileMode(Path.Combine(second, "assets/home.html"));
        Assert.Equal((UnixFileMode)0, mode & (UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite));
    }

    [Fact]
    public void Content_that_breaks_the_sha256_its_manifest_names_never_goes_live()
    {
        var source = Build("m", "1.0.0");
        var artifact = new NamedHashArtifact(Path.Combine(source, "config.txt"), new string('0', 64));
        var e = Assert.Throws<ArtifactException>(() => new ReleaseStager().Stage(artifact, _dir.Combine("r"), null, CancellationToken.None));
        Assert.Contains("'config.txt' has sha256", e.Message);
    }

    /// <summary>One file whose entry names a hash, as a fleet manifest's entries do.</summary>
    private sealed class NamedHashArtifact(string file, string sha) : IArtifactSource
    {
        public string Description => "manifest";

        public IEnumerable<ArtifactEntry> Entries(CancellationToken cancellationToken)
        {
            yield return new ArtifactEntry
            {
                Path = "config.txt", Kind = EntryKind.File, Mode = File.GetUnixFileMode(file), Size = new FileInfo(file).Length,
                ModifiedUtc = File.GetLastWriteTimeUtc(file), SourcePath = file, Sha256 = sha,
            };
        }
    }
}
