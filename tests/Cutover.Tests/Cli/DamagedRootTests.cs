using System.Text.Json;
using Cutover.Tests.Support;

namespace Cutover.Tests.Cli;

/// <summary>
/// A root damaged by hand or by a crash, through the real binary: an unreadable release record stays visible and
/// untouched, and a history line cut short by a crash costs only itself.
/// </summary>
public class DamagedRootTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly string _root;
    private readonly string _source;

    public DamagedRootTests()
    {
        _root = _dir.Combine("root");
        _source = _dir.Combine("src");
    }

    public void Dispose() => _dir.Dispose();

    private Task<CliResult> Run(params string[] args) => CutoverCli.RunAsync(_dir.Path, args);

    private async Task<string> Deploy(string version)
    {
        AppFactory.WriteHelloPhp(_source, version);
        var result = await Run("deploy", _source, "--json");
        Assert.True(result.ExitCode == 0, result.All);
        return JsonDocument.Parse(result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement.GetProperty("release").GetString()!;
    }

    private string Record(string id) => Path.Combine(_root, ".cutover", "releases", id + ".json");

    [Fact]
    [Trait(Needs.Trait, Needs.Slow)]
    public async Task An_unreadable_release_record_is_listed_with_its_reason_and_never_pruned_targeted_or_overwritten()
    {
        AppFactory.WriteConfig(_dir.Path, _root, "keep_releases: 1\n");
        var first = await Deploy("1.0.0");
        var second = await Deploy("2.0.0");
        const string damaged = "{\"id\": \"2026";
        File.WriteAllText(Record(first), damaged);

        var third = await Deploy("3.0.0");
        var releases = JsonDocument.Parse((await Run("releases", "--json")).Stdout).RootElement.EnumerateArray().ToList();
        var listed = Assert.Single(releases, r => r.GetProperty("id").GetString() == first);
        Assert.Equal("unreadable", listed.GetProperty("status").GetString());
        Assert.Contains($".cutover/releases/{first}.json is unreadable", listed.GetProperty("failure").GetString());
        Assert.True(Directory.Exists(Path.Combine(_root, "releases", first)), "the release with an unreadable record was pruned");
        Assert.Equal(damaged, File.ReadAllText(Record(first)));
        Assert.Contains("unreadable", (await Run("releases")).Stdout);

        var named = await Run("rollback", first);
        Assert.Equal(1, named.ExitCode);
        Assert.Contains($"release {first} cannot be rolled back to: its record .cutover/releases/{first}.json is unreadable", named.Stderr);

        // The live release's own record damaged: status names it instead of "nothing deployed yet".
        File.WriteAllText(Record(third), damaged);
        var status = await Run("status", "--json");
        Assert.Equal(0, status.ExitCode);
        var current = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("current");
        Assert.Equal(third, current.GetProperty("id").GetString());
        Assert.Equal("unreadable", current.GetProperty("status").GetString());
        var plain = await Run("status");
        Assert.DoesNotContain("nothing deployed yet", plain.Stdout);
        Assert.Contains("is unreadable", plain.Stdout);

        // Rolling back from it works, and its record is left as it was found, for a person to look at.
        var rollback = await Run("rollback");
        Assert.True(rollback.ExitCode == 0, rollback.All);
        Assert.Equal($"releases/{second}", new FileInfo(Path.Combine(_root, "current")).LinkTarget);
        Assert.Equal(damaged, File.ReadAllText(Record(third)));
    }

    [Fact]
    public async Task A_history_line_cut_short_by_a_crash_does_not_swallow_the_next_entry()
    {
        AppFactory.WriteConfig(_dir.Path, _root);
        await Deploy("1.0.0");
        var history = Path.Combine(_root, ".cutover", "history.jsonl");
        File.AppendAllText(history, "{\"action\":\"deploy\",\"release\":\"2026"); // no newline: the crash came mid-write

        var second = await Deploy("2.0.0");

        var status = JsonDocument.Parse((await Run("status", "--json")).Stdout).RootElement;
        Assert.Equal(second, status.GetProperty("last_action").GetProperty("release").GetString());
        using var last = JsonDocument.Parse(File.ReadLines(history).Last());
        Assert.Equal(second, last.RootElement.GetProperty("release").GetString());
    }
}
