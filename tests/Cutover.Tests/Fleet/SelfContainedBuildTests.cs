using Cutover.Fleet;
using Cutover.Tests.Support;

namespace Cutover.Tests.Fleet;

/// <summary>
/// Which fleet build CUTOVER_SELF_CONTAINED names (issue 14: the native cutover with its self-contained JIT half in jit/):
/// a native binary without its jit/ half is refused naming the publish command, and the version covers both halves, so
/// two builds that differ only in their JIT half are installed side by side on a host, never over each other.
/// </summary>
public sealed class SelfContainedBuildTests
{
    [Fact]
    public void A_build_is_both_halves_a_missing_half_names_the_publish_command_and_the_version_hashes_both()
    {
        using var dir = new TempDir("cutover-fleet-build-");
        var native = dir.Combine("cutover");
        File.WriteAllText(native, "native");
        string? Env(string name) => name == SelfContainedBuild.EnvironmentVariable ? native : null;

        var missing = Assert.Throws<DeployException>(() => SelfContainedBuild.Locate(Env));
        Assert.Contains($"{native} has no jit/cutover beside it", missing.Message);
        Assert.Contains(SelfContainedBuild.PublishCommand, missing.Message);
        Assert.Contains("-r linux-x64 --self-contained -p:PublishSingleFile=true", SelfContainedBuild.PublishCommand);

        Directory.CreateDirectory(dir.Combine("jit"));
        File.WriteAllText(dir.Combine("jit", "cutover"), "jit 1");
        var first = SelfContainedBuild.Locate(Env);
        Assert.Equal(dir.Path, first.Directory);
        Assert.Equal(dir.Combine("jit", "cutover"), first.JitPath);
        File.WriteAllText(dir.Combine("jit", "cutover"), "jit 2");
        var second = SelfContainedBuild.Locate(Env);
        Assert.NotEqual(first.Version, second.Version);

        var none = Assert.Throws<DeployException>(() => SelfContainedBuild.Locate(_ => null));
        Assert.Contains(SelfContainedBuild.PublishCommand, none.Message);
    }
}
