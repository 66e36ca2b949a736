using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Cutover.Tests.Support;

namespace Cutover.Tests.Cli;

/// <summary>
/// Bad input, one row per case of the issue, through the real binary: the input, its exit code (2: bad input,
/// 1: the environment failed), the message its one line of stderr must contain, and that nothing live changed
/// (`current`, its content, the releases, their records and the history are byte for byte as before).
/// Rows "as nobody" run the CLI as uid 65534, since root is not stopped by the permissions they are about.
/// </summary>
[Trait(Needs.Trait, Needs.Slow)]
public class BadInputMatrixTests : IDisposable
{
    private const int Nobody = 65534;
    private readonly TempDir _dir = new();
    private readonly string _root;
    private readonly string _source;
    private System.Diagnostics.Process? _agent;

    public BadInputMatrixTests()
    {
        _root = _dir.Combine("root");
        _source = _dir.Combine("src");
    }

    public void Dispose()
    {
        if (_agent is not null)
        {
            AgentProcess.Stop(_dir.Combine("home"), 15);
            AgentProcess.Stop(_dir.Combine("home"), 9);
            _agent.Dispose();
        }
        _dir.Dispose();
    }

    [Theory]
    [InlineData("an empty directory", 2, "holds no files, so the live release would be empty")]
    [InlineData("a 0-byte .tar.gz", 2, "holds no files, so the live release would be empty")]
    [InlineData("root: /", 2, "bad.yml:3:7: root: '/' is the file system's root")]
    [InlineData("a non-empty root that Cutover did not create", 2, "is not empty and Cutover did not create it (it has no .cutover/, and holds index.html)")]
    [InlineData("a root that is a file", 2, "is a file, not a directory")]
    [InlineData("hooks.timeout: 99999999999h", 2, "bad.yml:5:12: hooks.timeout: '99999999999h' is too long; a duration may be at most 1176h")]
    [InlineData("health.timeout: 1200h (over 49 days)", 2, "bad.yml:6:12: health.timeout: '1200h' is too long")]
    [InlineData("a tarball holding index.php and then index.php/x", 2, "entry 'index.php/x' is inside 'index.php', which an earlier entry made a file")]
    [InlineData("a file name of 300 characters", 2, "has a name of 300 bytes; file names on Linux are at most 255 bytes")]
    [InlineData("a read-only releases/ (as nobody)", 1, "cannot be written: Access to the path")]
    [InlineData("a read-only .cutover/releases (as nobody)", 1, "cannot be written: Access to the path")]
    [InlineData("a rollback with a read-only .cutover/releases (as nobody)", 1, "cannot be written: Access to the path")]
    [InlineData("status by a user who cannot open deploy.lock (as nobody)", 1, "deploy.lock: Permission denied")]
    [InlineData("an agent socket of another user (as nobody)", 1, "agent.sock belongs to another user (root, uid 0)")]
    [InlineData("rollback to a release that does not exist", 2, "release 20200101_000000 does not exist")]
    [InlineData("rollback to what is not a release id", 2, "'latest' is not a release id")]
    [InlineData("rollback to a release whose record is unreadable", 1, "is unreadable")]
    public async Task Gets_one_line_and_its_exit_code_and_changes_nothing_live(string input, int exitCode, string message)
    {
        await DeployLive();
        var attempt = Arrange(input);
        var before = LiveState();

        var result = await attempt();

        Assert.True(result.ExitCode == exitCode, $"exit code {result.ExitCode}, expected {exitCode}\n{result.All}");
        var errorLines = result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(errorLines.Length == 1 && errorLines[0].StartsWith("error: ", StringComparison.Ordinal), $"expected one error line\n{result.All}");
        Assert.Contains(message, errorLines[0]);
        Assert.Equal(before, LiveState());
    }

    /// <summary>Sets the case up and returns the command that meets it.</summary>
    private Func<Task<CliResult>> Arrange(string input)
    {
        switch (input)
        {
            case "an empty directory":
                Directory.CreateDirectory(_dir.Combine("empty"));
                return () => Run("deploy", _dir.Combine("empty"));
            case "a 0-byte .tar.gz":
                File.WriteAllBytes(_dir.Combine("zero.tar.gz"), []);
                return () => Run("deploy", _dir.Combine("zero.tar.gz"));
            case "root: /":
                // `status`, because a deploy by a Cutover without the check would write releases/ and friends into /.
                BadConfig("root: /");
                return () => Run("status", "-c", _dir.Combine("bad.yml"));
            case "a non-empty root that Cutover did not create":
            {
                var site = _dir.Combine("site");
                Directory.CreateDirectory(site);
                File.WriteAllText(Path.Combine(site, "index.html"), "someone else's");
                BadConfig($"root: {site}");
                return async () =>
                {
                    var result = await Run("deploy", _source, "-c", _dir.Combine("bad.yml"));
                    Assert.Equal(["index.html"], Directory.GetFileSystemEntries(site).Select(Path.GetFileName));
                    return result;
                };
            }
            case "a root that is a file":
                File.WriteAllText(_dir.Combine("a-file"), "");
                BadConfig($"root: {_dir.Combine("a-file")}");
                return () => Run("deploy", _source, "-c", _dir.Combine("bad.yml"));
            case "hooks.timeout: 99999999999h":
                BadConfig($"root: {_root}\nhooks:\n  timeout: 99999999999h\n  before_switch: [\"true\"]");
                return () => Run("deploy", _source, "-c", _dir.Combine("bad.yml"));
            case "health.timeout: 1200h (over 49 days)":
                BadConfig($"root: {_root}\nhealth:\n  url: http://127.0.0.1:9/\n  timeout: 1200h");
                return () => Run("deploy", _source, "-c", _dir.Combine("bad.yml"));
            case "a tarball holding index.php and then index.php/x":
                Tarball("dup.tar.gz", ("index.php", "<?php echo 1;"), ("index.php/x", "x"));
                return () => Run("deploy", _dir.Combine("dup.tar.gz"));
            case "a file name of 300 characters":
                Tarball("long.tar.gz", ("index.php", "<?php echo 1;"), (new string('a', 300), "x"));
                return () => Run("deploy", _dir.Combine("long.tar.gz"));
            case "a read-only releases/ (as nobody)":
                GiveTheRootToNobody();
                File.SetUnixFileMode(Path.Combine(_root, "releases"), ReadOnlyDirectory);
                return () => RunAsNobody(new Dictionary<string, string>(), "deploy", _source);
            case "a read-only .cutover/releases (as nobody)":
                GiveTheRootToNobody();
                File.SetUnixFileMode(Path.Combine(_root, ".cutover", "releases"), ReadOnlyDirectory);
                return () => RunAsNobody(new Dictionary<string, string>(), "deploy", _source);
            case "a rollback with a read-only .cutover/releases (as nobody)":
                GiveTheRootToNobody();
                File.SetUnixFileMode(Path.Combine(_root, ".cutover", "releases"), ReadOnlyDirectory);
                return () => RunAsNobody(new Dictionary<string, string>(), "rollback");
            case "status by a user who cannot open deploy.lock (as nobody)":
                LetNobodyIn();
                File.SetUnixFileMode(Path.Combine(_root, ".cutover", "deploy.lock"), UnixFileMode.UserRead | UnixFileMode.UserWrite);
                return () => RunAsNobody(new Dictionary<string, string>(), "status");
            case "an agent socket of another user (as nobody)":
                return AgentOfRoot();
            case "rollback to a release that does not exist":
                return () => Run("rollback", "20200101_000000");
            case "rollback to what is not a release id":
                return () => Run("rollback", "latest");
            case "rollback to a release whose record is unreadable":
            {
                var first = Directory.GetFiles(Path.Combine(_root, ".cutover", "releases"), "*.json").Order(StringComparer.Ordinal).First();
                File.WriteAllText(first, "{\"id\": \"2026");
                return () => Run("rollback", Path.GetFileNameWithoutExtension(first));
            }
            default:
                throw new ArgumentException($"no arrangement for '{input}'", nameof(input));
        }
    }

    private const UnixFileMode ReadOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead
                                                   | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>Two releases, the second live: the state every row must leave as it found it.</summary>
    private async Task DeployLive()
    {
        AppFactory.WriteConfig(_dir.Path, _root);
        AppFactory.WriteHelloPhp(_source, "1.0.0");
        var first = await Run("deploy", _source);
        Assert.True(first.ExitCode == 0, first.All);
        AppFactory.WriteHelloPhp(_source, "2.0.0");
        var second = await Run("deploy", _source);
        Assert.True(second.ExitCode == 0, second.All);
    }

    /// <summary>What is live, as text: where `current` points and what it serves, the releases, their records, the history.</summary>
    private string LiveState()
    {
        var state = new StringBuilder();
        state.AppendLine($"current -> {new FileInfo(Path.Combine(_root, "current")).LinkTarget}");
        state.AppendLine($"VERSION {File.ReadAllText(Path.Combine(_root, "current", "VERSION")).Trim()}");
        foreach (var release in Directory.GetFileSystemEntries(Path.Combine(_root, "releases")).Order(StringComparer.Ordinal))
            state.AppendLine($"release {Path.GetFileName(release)}");
        foreach (var record in Directory.GetFiles(Path.Combine(_root, ".cutover", "releases")).Order(StringComparer.Ordinal))
            state.AppendLine($"record {Path.GetFileName(record)}: {File.ReadAllText(record)}");
        state.AppendLine($"history: {File.ReadAllText(Path.Combine(_root, ".cutover", "history.jsonl"))}");
        return state.ToString();
    }

    private void BadConfig(string lines) =>
        File.WriteAllText(_dir.Combine("bad.yml"), $"app: shop\nstrategy: symlink\n{lines}\n");

    private void Tarball(string name, params (string Path, string Content)[] files)
    {
        using var output = File.Create(_dir.Combine(name));
        using var gzip = new GZipStream(output, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Pax);
        foreach (var (path, content) in files)
            tar.WriteEntry(new PaxTarEntry(TarEntryType.RegularFile, path) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(content)) });
    }

    /// <summary>uid 65534 may walk the test directory (TempDir makes it 0700) and read the source and the config.</summary>
    private void LetNobodyIn() => File.SetUnixFileMode(_dir.Path, ReadOnlyDirectory | UnixFileMode.UserWrite);

    /// <summary>The deploying user becomes nobody, so that only the read-only directory stands in a deploy's way.</summary>
    private void GiveTheRootToNobody()
    {
        LetNobodyIn();
        using var chown = System.Diagnostics.Process.Start("chown", ["-R", $"{Nobody}:{Nobody}", _root])!;
        chown.WaitForExit();
        Assert.Equal(0, chown.ExitCode);
    }

    /// <summary>
    /// A real agent run by root, its socket opened to everyone so that only the agent's own check of the peer's uid
    /// refuses nobody (the case that looked like "not running"); `status` of a rolling app asks it for instances.
    /// </summary>
    private Func<Task<CliResult>> AgentOfRoot()
    {
        var home = _dir.Combine("home");
        Directory.CreateDirectory(home);
        var config = _dir.Combine("rolling.yml");
        File.WriteAllText(config, $"app: node\nstrategy: rolling\nroot: {_dir.Combine("root-node")}\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:{HealthServer.FreePort()}\n");
        var start = CutoverCli.StartInfo(_dir.Path, "agent");
        start.Environment["CUTOVER_HOME"] = home;
        _agent = new System.Diagnostics.Process { StartInfo = start };
        _agent.OutputDataReceived += (_, _) => { };
        _agent.ErrorDataReceived += (_, _) => { };
        _agent.Start();
        _agent.BeginOutputReadLine();
        _agent.BeginErrorReadLine();
        Wait.Within(() => File.Exists(Path.Combine(home, "agent.pid")), TimeSpan.FromSeconds(30));
        Assert.True(File.Exists(Path.Combine(home, "agent.pid")), "the agent did not start within 30 s");
        LetNobodyIn();
        File.SetUnixFileMode(home, (UnixFileMode)Convert.ToInt32("711", 8));
        File.SetUnixFileMode(Path.Combine(home, "agent.sock"), (UnixFileMode)Convert.ToInt32("666", 8));
        return () => RunAsNobody(new Dictionary<string, string> { ["CUTOVER_HOME"] = home }, "status", "-c", config);
    }

    private Task<CliResult> Run(params string[] args) => CutoverCli.RunAsync(_dir.Path, args);

    private Task<CliResult> RunAsNobody(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        Assert.True(Environment.UserName == "root", "the rows 'as nobody' switch to uid 65534 with setpriv and need root, as CI has");
        return CutoverCli.RunAsUserAsync(Nobody, _dir.Path, environment, args);
    }
}
