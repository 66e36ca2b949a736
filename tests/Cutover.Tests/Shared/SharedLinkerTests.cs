using Cutover.Config;
using Cutover.Releases;
using Cutover.Shared;
using Cutover.Tests.Support;

namespace Cutover.Tests.Shared;

public class SharedLinkerTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly RootLayout _layout;

    public SharedLinkerTests()
    {
        _layout = new RootLayout(_dir.Path);
        Directory.CreateDirectory(_layout.Shared);
    }

    public void Dispose() => _dir.Dispose();

    private string Release(string id, Action<string>? fill = null)
    {
        var dir = Path.Combine(_layout.Releases, id);
        Directory.CreateDirectory(dir);
        fill?.Invoke(dir);
        return dir;
    }

    [Fact]
    public void A_missing_shared_dir_is_seeded_once_from_the_release_then_linked()
    {
        var first = Release("20260101_000000", d =>
        {
            Directory.CreateDirectory(Path.Combine(d, "storage", "logs"));
            File.WriteAllText(Path.Combine(d, "storage", "logs", "seed.txt"), "from release 1");
        });
        var outcome = new SharedLinker(_layout).Link(new SharedConfig { Dirs = ["storage"] }, first);
        Assert.Equal(["storage"], outcome.Seeded);
        Assert.Equal("../../shared/storage", new FileInfo(Path.Combine(first, "storage")).LinkTarget);
        Assert.Equal("from release 1", File.ReadAllText(Path.Combine(_layout.Shared, "storage/logs/seed.txt")));

        // The app writes to shared; the next release's own copy is discarded, not merged over it.
        File.WriteAllText(Path.Combine(first, "storage", "user-upload.jpg"), "precious");
        var second = Release("20260101_000001", d =>
        {
            Directory.CreateDirectory(Path.Combine(d, "storage", "logs"));
            File.WriteAllText(Path.Combine(d, "storage", "logs", "seed.txt"), "from release 2");
        });
        outcome = new SharedLinker(_layout).Link(new SharedConfig { Dirs = ["storage"] }, second);
        Assert.Empty(outcome.Seeded);
        Assert.Equal("precious", File.ReadAllText(Path.Combine(second, "storage", "user-upload.jpg")));
        Assert.Equal("from release 1", File.ReadAllText(Path.Combine(second, "storage/logs/seed.txt")));
    }

    [Fact]
    public void A_nested_shared_dir_is_created_with_its_parents_and_linked_relatively()
    {
        var release = Release("20260101_000000");
        new SharedLinker(_layout).Link(new SharedConfig { Dirs = ["public/uploads"] }, release);
        Assert.Equal("../../../shared/public/uploads", new FileInfo(Path.Combine(release, "public/uploads")).LinkTarget);
        Assert.True(Directory.Exists(Path.Combine(release, "public/uploads")));
        Assert.True(Directory.Exists(Path.Combine(_layout.Shared, "public/uploads")));
    }

    [Fact]
    public void A_missing_shared_file_the_release_does_not_carry_stops_the_deploy_naming_it()
    {
        var release = Release("20260101_000000");
        var e = Assert.Throws<DeployException>(() => new SharedLinker(_layout).Link(new SharedConfig { Files = [".env"] }, release));
        Assert.Contains("shared file '.env' does not exist", e.Message);
        Assert.Contains(Path.Combine(_layout.Shared, ".env"), e.Message);
        Assert.False(File.Exists(Path.Combine(_layout.Shared, ".env")));
    }

    [Fact]
    public void A_missing_shared_file_is_seeded_from_the_release_and_never_overwritten()
    {
        var first = Release("20260101_000000", d => File.WriteAllText(Path.Combine(d, ".env"), "FROM=release"));
        new SharedLinker(_layout).Link(new SharedConfig { Files = [".env"] }, first);
        Assert.Equal("FROM=release", File.ReadAllText(Path.Combine(_layout.Shared, ".env")));
        File.WriteAllText(Path.Combine(_layout.Shared, ".env"), "FROM=operator");

        var second = Release("20260101_000001", d => File.WriteAllText(Path.Combine(d, ".env"), "FROM=release2"));
        new SharedLinker(_layout).Link(new SharedConfig { Files = [".env"] }, second);
        Assert.Equal("FROM=operator", File.ReadAllText(Path.Combine(second, ".env")));
        Assert.Equal("../../shared/.env", new FileInfo(Path.Combine(second, ".env")).LinkTarget);
    }

    [Fact]
    public void A_shared_path_through_a_symlink_in_the_release_is_refused()
    {
        var release = Release("20260101_000000", d => File.CreateSymbolicLink(Path.Combine(d, "public"), "/tmp"));
        var e = Assert.Throws<DeployException>(() => new SharedLinker(_layout).Link(new SharedConfig { Dirs = ["public/uploads"] }, release));
        Assert.Contains("goes through the symlink", e.Message);
    }
}
