using System.Globalization;
using System.Text.RegularExpressions;
using Cutover.Tests.Support;

namespace Cutover.Tests.Cli;

/// <summary>
/// `cutover top` against a real agent running the Node example under load: in a pipe one plain snapshot, in a real
/// terminal (tmux) the live screen, its rate moving, a rolling deploy's batch, the logs key and q.
/// </summary>
public sealed partial class TopCommandTests : IDisposable
{
    private readonly AgentBed _bed = new();

    public void Dispose() => _bed.Dispose();

    /// <summary>
    /// Every agent a test starts would otherwise bind the default metrics port 127.0.0.1:9464; top reads the same text
    /// from the control socket (GET /v1/metrics), which serves it with the listener off.
    /// </summary>
    private Dictionary<string, string> Environment => new() { ["CUTOVER_HOME"] = _bed.Home, ["CUTOVER_METRICS_LISTEN"] = "off" };

    private Task<CliResult> Cli(params string[] args) => CutoverCli.RunAsync(_bed.Path, Environment, args);

    [Fact]
    public async Task Top_shows_instances_a_moving_rate_and_the_deploy_s_batch_and_q_quits_and_a_pipe_gets_one_plain_table()
    {
        var port = HealthServer.FreePort();
        // Batches of one with a monitor window: the deploy below stays in each batch for 2 s, long enough to be seen.
        _bed.WriteNodeConfig(port, "rolling", "rolling:\n  parallelism: 1\n  monitor: 2s\n");
        _bed.WriteVersion("1.0.0");
        var first = await Cli("deploy", _bed.Source);
        Assert.True(first.ExitCode == 0, first.All);
        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 2, TimeSpan.FromSeconds(90));

        // Not a terminal: one snapshot, plain, every instance, a rate over the second between its two scrapes.
        var snapshot = await Cli("top");
        Assert.True(snapshot.ExitCode == 0, snapshot.All);
        Assert.DoesNotContain('\u001b', snapshot.Stdout);
        Assert.Matches(@"node-0\s+web\s+ready", snapshot.Stdout);
        Assert.Matches(@"node-1\s+web\s+ready", snapshot.Stdout);
        var plainRate = Regex.Match(snapshot.Stdout, @"\bnode\s+\S+\s+127\.0\.0\.1:\d+\s+2/2 ready\s+([0-9.]+)\s");
        Assert.True(plainRate.Success, snapshot.Stdout);
        Assert.True(double.Parse(plainRate.Groups[1].Value, CultureInfo.InvariantCulture) > 0, snapshot.Stdout);

        var exitFile = _bed.Combine("top.exit");
        using var terminal = new TmuxSession(_bed.Path, 150, 40, Environment,
            $"dotnet exec '{CutoverCli.Dll}' top; echo $? > '{exitFile}'");
        var screen = "";
        double? Rate() => AppRow().Match(screen) is { Success: true } m ? double.Parse(m.Groups["rate"].Value, CultureInfo.InvariantCulture) : null;
        await Wait.UntilAsync(() =>
        {
            screen = terminal.Capture();
            return screen.Contains("│ node-0 ") && screen.Contains("│ node-1 ") && Rate() > 0;
        }, TimeSpan.FromSeconds(20), "top's screen with both instances and a request rate above 0", TimeSpan.FromMilliseconds(200));
        var firstRate = Rate();
        await Wait.UntilAsync(() =>
        {
            screen = terminal.Capture();
            return Rate() is { } now && now > 0 && now != firstRate;
        }, TimeSpan.FromSeconds(10), $"the request rate to change from {firstRate}", TimeSpan.FromMilliseconds(250));

        // A deploy while top runs: the app's row names the release it moves to and the batch it is in.
        _bed.WriteVersion("2.0.0");
        var deploy = Cli("deploy", _bed.Source);
        await Wait.UntilAsync(() =>
        {
            screen = terminal.Capture();
            return BatchShown().IsMatch(screen) || deploy.IsCompleted;
        }, TimeSpan.FromSeconds(30), "top to show the deploy's batch", TimeSpan.FromMilliseconds(100));
        Assert.Matches(BatchShown(), screen);
        var second = await deploy;
        Assert.True(second.ExitCode == 0, second.All);

        // l: the selected app's logs (an instance's start line is in them); q: back to the table; q again: top exits 0.
        terminal.SendKeys("l");
        await Wait.UntilAsync(() => (screen = terminal.Capture()).Contains("logs of node") && screen.Contains("listening on"),
            TimeSpan.FromSeconds(10), "the logs of node", TimeSpan.FromMilliseconds(100));
        terminal.SendKeys("q");
        await Wait.UntilAsync(() => terminal.Capture().Contains("instances of node"), TimeSpan.FromSeconds(10), "the table again after q in the logs",
            TimeSpan.FromMilliseconds(100));
        Assert.False(File.Exists(exitFile), "q in the logs went back to the table, it did not quit");
        terminal.SendKeys("q");
        await Wait.UntilAsync(() => File.Exists(exitFile) && File.ReadAllText(exitFile).Trim().Length > 0, TimeSpan.FromSeconds(10), "top to exit after q",
            TimeSpan.FromMilliseconds(100));
        Assert.Equal("0", File.ReadAllText(exitFile).Trim());
    }

    [Theory]
    [InlineData(new[] { "top", "--stream" }, 2, "--stream writes JSON lines; give --json with it")]
    [InlineData(new[] { "top", "--hosts", "web1" }, 2, "--hosts is for configs with hosts; there is no cutover.yml here")]
    [InlineData(new[] { "top", "-c", "nope.yml" }, 2, "config file not found")]
    [InlineData(new[] { "top" }, 1, "the agent is not running (there is no ")]
    public async Task Bad_input_and_no_agent_get_one_line_and_their_exit_code(string[] args, int exitCode, string message)
    {
        var result = await Cli(args);

        Assert.Equal(exitCode, result.ExitCode);
        Assert.Equal("", result.Stdout);
        var line = Assert.Single(result.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: ", line);
        Assert.Contains(message, line);
    }

    /// <summary>The app's row of the live table: │ node │ release │ proxy │ 2/2 ready │ req/s │.</summary>
    [GeneratedRegex(@"│ node\s+│[^│]+│[^│]+│\s*\d+/\d+ ready\s*│\s*(?<rate>[0-9.]+)\s*│")]
    private static partial Regex AppRow();

    [GeneratedRegex(@"deploying \d{8}_\d{6}: batch [12]/2")]
    private static partial Regex BatchShown();
}
