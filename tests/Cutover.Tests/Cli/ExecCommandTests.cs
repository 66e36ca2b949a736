using Cutover.Tests.Support;

namespace Cutover.Tests.Cli;

/// <summary>
/// `cutover exec -- CMD` on this machine: the real binary becomes the command in the live release, so its exit
/// status, signals and output are the command's own.
/// </summary>
[Trait(Needs.Trait, Needs.Slow)]
public class ExecCommandTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _root;

    public ExecCommandTests()
    {
        _root = _dir.Combine("root");
        AppFactory.WriteHelloPhp(_dir.Combine("src"), "1.0.0");
        AppFactory.WriteConfig(_dir.Path, _root);
    }

    public void Dispose() => _dir.Dispose();

    private Task<CliResult> Run(params string[] args) => CutoverCli.RunAsync(_dir.Path, args);

    [Fact]
    public async Task The_command_runs_in_the_live_release_directory_and_its_exit_status_is_cutovers()
    {
        Assert.Equal(0, (await Run("deploy", "src")).ExitCode);
        var release = Path.GetFileName(new FileInfo(Path.Combine(_root, "current")).LinkTarget)!;

        var where = await Run("exec", "--", "pwd; echo \"release=$CUTOVER_RELEASE_ID app=$CUTOVER_APP\"; cat VERSION");
        Assert.True(where.ExitCode == 0, where.All);
        // The release itself, not `current`: a deploy that switches meanwhile does not move a running console.
        Assert.Equal([Path.Combine(_root, "releases", release), $"release={release} app=shop", "1.0.0"], where.Stdout.TrimEnd().Split('\n'));

        Assert.Equal(3, (await Run("exec", "--", "sh", "-c", "exit 3")).ExitCode);
        var missing = await Run("exec", "--", "no-such-command-here", "arg");
        Assert.Equal(127, missing.ExitCode);
        Assert.Contains("no-such-command-here", missing.Stderr);
        // Several words reach the program as they are, spaces and quotes included.
        var words = await Run("exec", "--", "printf", "[%s]", "a b", "'c'");
        Assert.Equal("[a b]['c']", words.Stdout);
        // Killed by a signal: 128+n, as a shell reports it.
        Assert.Equal(128 + 15, (await Run("exec", "--", "kill -TERM $$")).ExitCode);
    }

    [Fact]
    public async Task Without_a_live_release_or_with_a_fleet_filter_on_one_machine_it_refuses()
    {
        var nothing = await Run("exec", "--", "true");
        Assert.Equal(1, nothing.ExitCode);
        Assert.Contains("nothing deployed yet", nothing.Stderr);
        var hosts = await Run("exec", "--hosts", "web1", "--", "true");
        Assert.Equal(2, hosts.ExitCode);
        Assert.Contains("error: --hosts is for configs with hosts", hosts.Stderr);
        var roles = await Run("logs", "--roles", "web");
        Assert.Equal(2, roles.ExitCode);
        var noCommand = await Run("exec");
        Assert.Equal(2, noCommand.ExitCode);
    }
}
