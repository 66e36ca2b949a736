using System.Text.Json;
using Cutover.Tests.Support;

namespace Cutover.Tests.Cli;

/// <summary>
/// -c given more than once, through the real CLI, for the commands that need no agent (deploy, releases, status,
/// rollback, migrations lint, init), and symlink's env: hooks get it, --env-only deploys the live files again.
/// </summary>
public sealed class LayeredConfigCliTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Task<CliResult> Cli(IReadOnlyDictionary<string, string>? environment, params string[] args) =>
        CutoverCli.RunAsync(_dir.Path, environment ?? new Dictionary<string, string>(), args);

    private string Write(string name, string text)
    {
        var path = _dir.Combine(name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public async Task Every_command_reads_the_layers_and_an_error_names_the_later_file()
    {
        Write("cutover.yml", "app: site\nroot: ./staging-root\nkeep_releases: 3\n");
        Write("cutover.production.yml", "root: ./production-root\n");
        Write("cutover.lint.yml", "migrations:\n  dir: db\n");
        Write("db/001.sql", "ALTER TABLE t ADD COLUMN c int;\n");
        Write("src/index.html", "v1\n");
        string[] layers = ["-c", "cutover.yml", "-c", "cutover.production.yml"];

        var deploy = await Cli(null, ["deploy", "src", "--json", .. layers]);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        Assert.True(Directory.Exists(_dir.Combine("production-root", "releases")));
        Assert.False(Directory.Exists(_dir.Combine("staging-root")));

        var releases = await Cli(null, ["releases", "--json", .. layers]);
        Assert.Equal(0, releases.ExitCode);
        Assert.Single(JsonDocument.Parse(releases.Stdout).RootElement.EnumerateArray());
        var status = await Cli(null, ["status", "--json", .. layers]);
        Assert.Equal(0, status.ExitCode);
        Assert.Equal(_dir.Combine("production-root"), JsonDocument.Parse(status.Stdout).RootElement.GetProperty("root").GetString());
        // migrations.dir of the later file: lint finds its file (and the base file alone has no migrations section).
        var lint = await Cli(null, ["migrations", "lint", .. layers, "-c", "cutover.lint.yml"]);
        Assert.Equal(0, lint.ExitCode);
        Assert.StartsWith("1 file, ", lint.Stdout, StringComparison.Ordinal);
        Assert.Equal(2, (await Cli(null, ["migrations", "lint", "-c", "cutover.yml"])).ExitCode);
        // Nothing to roll back to: the error is rollback's own, so the layers were read.
        var rollback = await Cli(null, ["rollback", .. layers]);
        Assert.NotEqual(0, rollback.ExitCode);
        Assert.DoesNotContain("config", rollback.Stderr.Split(':')[0], StringComparison.Ordinal);

        Write("cutover.broken.yml", "\nkeep_releases: none\n");
        var broken = await Cli(null, ["status", "-c", "cutover.yml", "-c", "cutover.broken.yml"]);
        Assert.Equal(2, broken.ExitCode);
        Assert.Contains($"{_dir.Combine("cutover.broken.yml")}:2:16: keep_releases: 'none' is not a whole number", broken.Stderr, StringComparison.Ordinal);
        var init = await Cli(null, ["init", .. layers]);
        Assert.Equal(2, init.ExitCode);
        Assert.Contains("takes one -c file", init.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Symlink_hooks_get_the_env_and_env_only_redeploys_the_live_files_with_their_shared_links()
    {
        Write("cutover.yml", """
            app: site
            root: ./root
            env_file: .env
            env:
              GREETING: hello ${WHO}
            shared:
              dirs: [storage]
            hooks:
              after_switch: ["printf '%s|%s' \"$GREETING\" \"$API_TOKEN\" > seen.txt"]
            """);
        Write(".env", "API_TOKEN=symlink-token-1\n");
        Write("src/index.html", "v1\n");
        Write("src/storage/seed.txt", "seed\n");
        var first = await Cli(new Dictionary<string, string> { ["WHO"] = "world" }, ["deploy", "src"]);
        Assert.True(first.ExitCode == 0, first.All);
        Assert.Equal("hello world|symlink-token-1", File.ReadAllText(_dir.Combine("root", "current", "seen.txt")));

        Write(".env", "API_TOKEN=symlink-token-2\n");
        Write("src/index.html", "not deployed\n");
        var again = await Cli(new Dictionary<string, string> { ["WHO"] = "again" }, ["deploy", "--env-only"]);
        Assert.True(again.ExitCode == 0, again.All);
        Assert.Equal("v1\n", File.ReadAllText(_dir.Combine("root", "current", "index.html")));
        Assert.Equal("hello again|symlink-token-2", File.ReadAllText(_dir.Combine("root", "current", "seen.txt")));
        Assert.Equal("../../shared/storage", new DirectoryInfo(_dir.Combine("root", "current", "storage")).LinkTarget);
        Assert.Equal(2, Directory.GetFiles(_dir.Combine("root", ".cutover", "env"), "*.env").Length);
        Assert.DoesNotContain("symlink-token", again.All, StringComparison.Ordinal);
    }
}
