using System.Diagnostics;

namespace Cutover.Tests.Support;

/// <summary>
/// A temp dir with a CUTOVER_HOME of its own, for tests that drive the real CLI and agent: every command runs with
/// that home, the Node example app is the source (one VERSION file per deploy), and disposing stops the agent and
/// every process of that home, by pid, before the directory goes.
/// </summary>
public sealed class AgentBed : IDisposable
{
    private readonly TempDir _dir = new();

    public string Path => _dir.Path;
    public string Home => _dir.Combine("home");
    public string Source => _dir.Combine("src");

    public string Root => _dir.Combine("root");

    /// <summary>CUTOVER_METRICS_LISTEN for every command (and so the agent a deploy starts); null: off, as for every test agent.</summary>
    public string? MetricsListen { get; init; }

    private IReadOnlyDictionary<string, string> CommandEnvironment => MetricsListen is null
        ? new Dictionary<string, string> { ["CUTOVER_HOME"] = Home }
        : new Dictionary<string, string> { ["CUTOVER_HOME"] = Home, [Cutover.Metrics.MetricsAddress.Variable] = MetricsListen };

    public string Combine(string name) => _dir.Combine(name);

    /// <summary>
    /// cutover.yml for the Node example at 2 instances (ready by process.send) behind a proxy on <paramref name="port"/>,
    /// deployed to <see cref="Root"/>, with <paramref name="extra"/> as more top-level YAML.
    /// </summary>
    public string WriteNodeConfig(int port, string strategy, string extra = "")
    {
        var path = _dir.Combine("cutover.yml");
        File.WriteAllText(path, $"""
            app: node
            strategy: {strategy}
            root: {Root}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 5s
            proxy:
              listen: 127.0.0.1:{port}
              drain_timeout: 5s
            {extra}
            """);
        return path;
    }

    /// <summary>The Node example app as the source, answering "hello from <paramref name="version"/>".</summary>
    public void WriteVersion(string version)
    {
        if (!Directory.Exists(Source)) AppFactory.CopyTree(System.IO.Path.Combine(AppContext.BaseDirectory, "examples", "node-app"), Source);
        File.WriteAllText(System.IO.Path.Combine(Source, "VERSION"), version);
    }

    public Task<CliResult> Cli(params string[] args) =>
        CutoverCli.RunAsync(_dir.Path, CommandEnvironment, args);

    public ProcessStartInfo StartInfo(params string[] args)
    {
        var start = CutoverCli.StartInfo(_dir.Path, args);
        foreach (var (name, value) in CommandEnvironment) start.Environment[name] = value;
        return start;
    }

    /// <summary>Starts a command in the background, its stdout and stderr lines arriving on <paramref name="onLine"/>.</summary>
    public Process Start(Action<string> onLine, params string[] args) => CutoverCli.Start(StartInfo(args), onLine);

    public void Dispose()
    {
        // SIGKILL at once: a graceful stop (drain and stop every app) asserted nothing here and cost every test that
        // started an agent its time; the agent's shutdown has tests of its own. Stop(9) kills the instances' process
        // groups from state.json, and the environment sweep anything else of this home (a warm blue-green set).
        AgentProcess.Stop(Home, 9);
        OwnedProcesses.KillByEnvironment("CUTOVER_HOME", Home);
        _dir.Dispose();
    }
}
