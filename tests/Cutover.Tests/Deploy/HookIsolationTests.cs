using System.Text.RegularExpressions;
using Cutover.Tests.Support;

namespace Cutover.Tests.Deploy;

/// <summary>
/// Nothing that runs in a new release before its switch can change a byte of another release; after the switch a
/// file the release shares with another is read-only, so a write in place fails loudly instead of changing the
/// rollback target. Through the real CLI; the last test drops root's DAC override, as a deploy user would not have it.
/// </summary>
public class HookIsolationTests : IDisposable
{
    private const string Original = "<?php echo 'hello';\n";

    private readonly TempDir _dir = new();
    private readonly string _root;
    private readonly string _source;

    public HookIsolationTests()
    {
        _root = _dir.Combine("root");
        _source = _dir.Combine("src");
        Directory.CreateDirectory(Path.Combine(_source, "public"));
        File.WriteAllText(Path.Combine(_source, "public", "index.php"), Original);
        File.WriteAllText(Path.Combine(_source, "VERSION"), "1\n");
    }

    public void Dispose() => _dir.Dispose();

    private async Task<(CliResult Result, string Release)> Deploy(string hooks = "", bool withoutDacOverride = false)
    {
        AppFactory.WriteConfig(_dir.Path, _root, hooks);
        var start = CutoverCli.StartInfo(_dir.Path, "deploy", _source);
        if (withoutDacOverride)
        {
            // Root that obeys file modes, as the deploy user of a real server does: no CAP_DAC_OVERRIDE.
            start.ArgumentList.Insert(0, start.FileName);
            start.ArgumentList.Insert(0, "--");
            start.ArgumentList.Insert(0, "--inh-caps=-dac_override,-dac_read_search");
            start.ArgumentList.Insert(0, "--bounding-set=-dac_override,-dac_read_search");
            start.FileName = "setpriv";
        }
        using var process = System.Diagnostics.Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await process.WaitForExitAsync(timeout.Token);
        var result = new CliResult(process.ExitCode, await stdout, await stderr);
        return (result, Regex.Match(result.Stdout, @"release (\d{8}_\d{6}(_\d+)?)").Groups[1].Value);
    }

    private string Index(string release) => File.ReadAllText(Path.Combine(_root, "releases", release, "public", "index.php"));
    private string CurrentTarget => new FileInfo(Path.Combine(_root, "current")).LinkTarget!;

    [Fact]
    public async Task A_build_hook_writing_in_place_changes_neither_current_nor_any_earlier_release()
    {
        var (first, r1) = await Deploy();
        Assert.True(first.ExitCode == 0, first.All);
        var (second, r2) = await Deploy();
        Assert.True(second.ExitCode == 0, second.All);

        // The hook appends in place (as `echo x >> file` or a tool rewriting a generated file does); before_switch
        // checks what the live release holds at that moment.
        var (third, r3) = await Deploy("hooks:\n  build: [\"echo x >> public/index.php\"]\n" +
                                       "  before_switch: [\"cmp public/index.php ../../current/public/index.php && exit 9 || true\"]\n");
        Assert.True(third.ExitCode == 0, third.All);

        Assert.Equal(Original, Index(r1));
        Assert.Equal(Original, Index(r2));
        Assert.Equal(Original + "x\n", Index(r3));
        Assert.Equal("releases/" + r3, CurrentTarget);
        // After the hooks, what is still identical is shared again: VERSION is one inode across all three.
        Assert.Equal(Posix.Inode(Path.Combine(_root, "releases", r1, "VERSION")), Posix.Inode(Path.Combine(_root, "releases", r3, "VERSION")));
        Assert.NotEqual(Posix.Inode(Path.Combine(_root, "releases", r1, "public/index.php")), Posix.Inode(Path.Combine(_root, "releases", r3, "public/index.php")));
        Assert.Contains("dedupe", third.Stdout);
        Assert.Contains("2 files, 1 shared with earlier releases, 1 the release's own", third.Stdout);
    }

    [Fact]
    public async Task A_build_hook_writing_in_place_leaves_current_untouched_when_the_deploy_then_fails()
    {
        var (first, r1) = await Deploy();
        Assert.True(first.ExitCode == 0, first.All);

        var (failed, _) = await Deploy("hooks:\n  build: [\"echo x >> public/index.php\", \"echo y >> VERSION\"]\n  before_switch: [\"exit 3\"]\n");
        Assert.Equal(1, failed.ExitCode);

        Assert.Equal("releases/" + r1, CurrentTarget);
        Assert.Equal(Original, Index(r1));
        Assert.Equal("1\n", File.ReadAllText(Path.Combine(_root, "current", "VERSION")));
    }

    [Fact]
    public async Task After_the_switch_an_in_place_write_to_a_shared_file_fails_loudly_instead_of_changing_the_rollback_target()
    {
        Assert.True(Environment.UserName == "root", "this test drops CAP_DAC_OVERRIDE with setpriv and needs root, as CI has");
        var (first, r1) = await Deploy(withoutDacOverride: true);
        Assert.True(first.ExitCode == 0, first.All);

        var (second, r2) = await Deploy("hooks:\n  after_switch: [\"echo x >> public/index.php\"]\n", withoutDacOverride: true);

        Assert.Equal(1, second.ExitCode);
        Assert.Contains("Permission denied", second.All);
        Assert.Equal("releases/" + r1, CurrentTarget);
        Assert.Equal(Original, Index(r1));
        Assert.Equal(Original, Index(r2));
        Assert.Equal(Posix.Inode(Path.Combine(_root, "releases", r1, "public/index.php")), Posix.Inode(Path.Combine(_root, "releases", r2, "public/index.php")));
    }
}
