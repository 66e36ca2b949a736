using System.Diagnostics;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// One fleet test's bench, over the collection's shared sshd hosts and published build: a working directory, an app name
/// of its own (so tests never share a root on a host), the CLI run with CUTOVER_SELF_CONTAINED set to the published
/// build, and cutover.yml written with the hosts and ssh keys every fleet config needs. Owns only the directory; the
/// hosts' agents and instances are each test's to clean up, since tests stop them differently.
/// </summary>
public sealed class FleetBed(SshFleet fleet, PublishedCutover published, ITestOutputHelper? output, string appPrefix) : IDisposable
{
    private readonly TempDir _dir = new();

    public SshFleet Fleet => fleet;
    public TempDir Dir => _dir;
    public string App { get; } = appPrefix + Guid.NewGuid().ToString("N")[..8];
    public string Source => _dir.Combine("src");

    /// <summary>Variables every CLI run gets besides CUTOVER_SELF_CONTAINED; a test may add to it.</summary>
    public Dictionary<string, string> Environment { get; } = new();

    /// <summary>This app's root on <paramref name="host"/>.</summary>
    public string RootOf(SshHost host) => Path.Combine(host.Root, App);

    /// <summary><see cref="Environment"/> with CUTOVER_SELF_CONTAINED set to <paramref name="build"/> (the published one by default).</summary>
    public Dictionary<string, string> CliEnvironment(string? build = null) => new(Environment) { ["CUTOVER_SELF_CONTAINED"] = build ?? published.Binary };

    public Task<CliResult> Cli(params string[] args) => CliWith(CliEnvironment(), args);

    /// <summary>The CLI with exactly <paramref name="environment"/>; the command, its time, exit code and output go to the test's log.</summary>
    public async Task<CliResult> CliWith(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var clock = Stopwatch.StartNew();
        var result = await CutoverCli.RunAsync(_dir.Path, environment, args);
        output?.WriteLine($"$ cutover {string.Join(' ', args)}  ({clock.Elapsed.TotalSeconds:0.00}s, exit {result.ExitCode})\n{result.Stdout}{result.Stderr}");
        return result;
    }

    public static string HostsYaml(IEnumerable<SshHost> hosts, Func<SshHost, string> root, Func<SshHost, string>? extra = null) =>
        "hosts:\n" + string.Concat(hosts.Select(h => $"  - {{ host: {h.Address}, port: {h.Port}, user: root, root: {root(h)}{extra?.Invoke(h)} }}\n"));

    /// <summary>
    /// Writes <paramref name="file"/>: app, strategy, root, the hosts (each with <paramref name="hostExtra"/> inside its
    /// flow mapping), ssh with the fleet's client key and known_hosts, then <paramref name="body"/> as top-level YAML.
    /// </summary>
    public string Config(string strategy, IEnumerable<SshHost> hosts, string body = "", Func<SshHost, string>? hostExtra = null, string? knownHosts = null,
        Func<SshHost, string>? rootOf = null, string file = "cutover.yml")
    {
        var path = _dir.Combine(file);
        File.WriteAllText(path, $"""
            app: {App}
            strategy: {strategy}
            root: /srv/{App}
            {HostsYaml(hosts, rootOf ?? RootOf, hostExtra)}
            ssh:
              key: {fleet.ClientKey}
              known_hosts: {knownHosts ?? fleet.KnownHosts}
            {body}
            """.Replace("\n\n", "\n"));
        return path;
    }

    /// <summary>
    /// The usual config for the node example app behind each host's proxy on <paramref name="ports"/>: <paramref name="instances"/>
    /// web instances ready on their message, a 2 s drain, and <paramref name="strategySection"/> (rolling with a
    /// <paramref name="monitor"/> window by default). <paramref name="run"/> adds lines under run:, <paramref name="body"/> top-level YAML.
    /// </summary>
    public string NodeConfig(IEnumerable<SshHost> hosts, IReadOnlyDictionary<SshHost, int> ports, int instances, string monitor = "0s", string body = "",
        string run = "", Func<SshHost, string>? hostExtra = null, string strategy = "rolling", string? strategySection = null) =>
        Config(strategy, hosts, $"""
            run:
              command: node server.js
              instances: {instances}
              ready: message
              ready_timeout: 10s
            {Indent(run)}
            proxy:
              listen: 127.0.0.1:1
              drain_timeout: 2s
            {strategySection ?? $"rolling:\n  monitor: {monitor}"}
            {body}
            """, h => $", proxy_listen: 127.0.0.1:{ports[h]}{hostExtra?.Invoke(h)}");

    /// <summary>The example node app (examples/node-app) copied to <see cref="Source"/>.</summary>
    public string CopyNodeApp()
    {
        AppFactory.CopyTree(Path.Combine(AppContext.BaseDirectory, "examples", "node-app"), Source);
        return Source;
    }

    /// <summary>Kills (9) whatever process still mentions this app's root on <paramref name="hosts"/>: what a killed session left behind.</summary>
    public void KillLeftovers(IEnumerable<SshHost> hosts)
    {
        foreach (var host in hosts)
            foreach (var pid in OwnedProcesses.Mentioning(RootOf(host))) Cutover.Platform.LibC.Kill(pid, 9);
    }

    /// <summary>Stops the host's agent with <paramref name="signal"/>, waits up to 30 s for it to exit, then SIGKILL; removes its pid file.</summary>
    public static void StopAgent(SshHost host, int signal)
    {
        var pidFile = Path.Combine(host.AgentHome, "agent.pid");
        if (!File.Exists(pidFile) || !int.TryParse(File.ReadAllText(pidFile), out var pid)) return;
        Cutover.Platform.LibC.Kill(pid, signal);
        Wait.Within(() => !Cutover.Platform.LibC.Kill(pid, 0), TimeSpan.FromSeconds(30));
        Cutover.Platform.LibC.Kill(pid, 9);
        File.Delete(pidFile);
    }

    private static string Indent(string lines) =>
        lines.Length == 0 ? "" : string.Join('\n', lines.Split('\n').Select(l => "  " + l));

    public void Dispose() => _dir.Dispose();
}
