using Cutover.Config;
using Cutover.Containers;
using Cutover.Tests.Support;
using Docker.DotNet;
using Docker.DotNet.Models;
using Xunit.Abstractions;

namespace Cutover.Tests.Swarm;

/// <summary>
/// The Swarm tests, one at a time on their one dockerd, beside the other test classes (no other class outside the
/// serial collection starts a dockerd; DockerRuntimeTests, which do, run in it, alone).
/// </summary>
[CollectionDefinition(Name)]
[RunsFor(190)]
public sealed class SwarmCollection : ICollectionFixture<SwarmFixture>
{
    public const string Name = "swarm";
}

/// <summary>
/// One dockerd in single-node swarm mode (advertised on loopback) for every Swarm test, with the app images made
/// once: app:v1, app:v2, app:v3 (healthy) and app:bad (its healthcheck never passes).
/// </summary>
public sealed class SwarmFixture : IAsyncLifetime
{
    private readonly HttpClient _http = new();
    private DockerEngine? _engine;

    public DockerEngine Engine => _engine ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync()
    {
        _engine = await DockerEngine.StartAsync();
        // A port of its own for the swarm's control plane: 2377 may be taken by another swarm on this machine.
        var control = HealthServer.FreePort();
        await _engine.DockerAsync(["swarm", "init", "--advertise-addr", $"127.0.0.1:{control}", "--listen-addr", $"127.0.0.1:{control}"]);
        // No IPVS here, so no routing mesh or VIPs: tasks join a swarm-scoped bridge, and tests reach them at the
        // container's own address on it.
        await _engine.DockerAsync(["network", "create", "-d", "bridge", "--scope", "swarm", Network]);
        await Task.WhenAll(
            _engine.ImportAppImageAsync("app:v1", "v1"),
            _engine.ImportAppImageAsync("app:v2", "v2"),
            _engine.ImportAppImageAsync("app:v3", "v3"),
            _engine.ImportAppImageAsync("app:bad", "bad", healthy: false));
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        if (_engine is not null) await _engine.DisposeAsync();
    }

    public const string Network = "cutover-test";

    public DockerClient Client() => DockerClientFactory.Create(Engine.Host);

    /// <summary>
    /// A cutover.yml for one service in <paramref name="dir"/>, with durations short enough for tests: a healthcheck every
    /// 1 s that needs /www/healthy, and a 2 s monitor. The probe's timeout is long (10 s) on purpose: a probe is a
    /// container exec, which took over a second twice in a row on the loaded two-core CI machine (a Native AOT compile
    /// beside it) and so turned a healthy app:v2 task unhealthy; app:bad's probe fails at once, so it is not slowed.
    /// Tasks join the test network only when <paramref name="network"/> (needed to reach them over HTTP; attaching makes
    /// every task start slower).
    /// </summary>
    public string WriteConfig(TempDir dir, string service, int replicas = 3, string order = "start-first", string extra = "", string taskDeadline = "20s", bool network = false)
    {
        var file = dir.Combine("cutover.yml");
        // `extra` is more keys of the swarm section, indented by two spaces.
        File.WriteAllText(file, $"""
            app: {service}
            strategy: swarm
            keep_releases: 10
            swarm:
              docker_host: {Engine.Host}
              service: {service}
              image: app:v1
              replicas: {replicas}
              update: {"{"} parallelism: 1, delay: 0s, order: {order}, failure_action: rollback, monitor: 2s, max_failure_ratio: 0 {"}"}
              rollback: {"{"} parallelism: 0, order: stop-first, monitor: 1s {"}"}
              healthcheck: {"{"} test: ["CMD", "test", "-e", "/www/healthy"], interval: 1s, timeout: 10s, retries: 2 {"}"}
              stop_grace_period: 2s
              task_deadline: {taskDeadline}
              networks: [{(network ? Network : "")}]
              {extra}
            """);
        return file;
    }

    public static CutoverConfig Load(string file) => ConfigLoader.Load(file);

    /// <summary>The one deploy pipeline with strategy: swarm's activation, as `cutover deploy` builds it; health.url goes through the fixture's client.</summary>
    public Cutover.Deploy.DeployPipeline Deployer(CutoverConfig config, Cutover.Progress.IDeployProgress progress, Func<string, string?>? environment = null) =>
        new(config, progress, _http, environment: environment);


    public async Task<SwarmService> InspectAsync(string service)
    {
        using var client = Client();
        return await client.Swarm.InspectServiceAsync(service);
    }

    public async Task<IList<TaskResponse>> TasksAsync(string service)
    {
        using var client = Client();
        var svc = await client.Swarm.InspectServiceAsync(service);
        return await Cutover.Swarm.SwarmUpdateWatcher.ListTasksAsync(client, svc.ID, CancellationToken.None);
    }

    /// <summary>What each running task of the service answers on / (the image says "hello from VERSION (container)"): the version part.</summary>
    public async Task<IReadOnlyList<string>> AnswersAsync(string service)
    {
        using var client = Client();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var answers = new List<string>();
        foreach (var task in (await TasksAsync(service)).Where(t => t.DesiredState == TaskState.Running))
        {
            var container = await client.Containers.InspectContainerAsync(task.Status!.ContainerStatus!.ContainerID!);
            var address = container.NetworkSettings!.Networks![Network].IPAddress;
            answers.Add((await http.GetStringAsync($"http://{address}:3000/")).Trim().Replace(" (container)", "", StringComparison.Ordinal));
        }
        return answers;
    }

    public async Task RemoveServiceAsync(string service)
    {
        using var client = Client();
        try { await client.Swarm.RemoveServiceAsync(service); } catch (DockerApiException) { }
    }
}

/// <summary>Collects progress lines so tests can check what a person would have seen.</summary>
public sealed class RecordingProgress(ITestOutputHelper? output = null) : Cutover.Progress.IDeployProgress
{
    private readonly List<string> _lines = [];

    public IReadOnlyList<string> Lines { get { lock (_lines) return _lines.ToList(); } }

    private void Add(string line)
    {
        lock (_lines) _lines.Add(line);
        try { output?.WriteLine(line); } catch (InvalidOperationException) { }
    }

    public void PhaseStarted(string phase) => Add($"{phase}: started");
    public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null) => Add($"{phase}: done ({detail})");
    public void PhaseFailed(string phase, TimeSpan elapsed, string error) => Add($"{phase}: failed: {error}");
    public void Output(string phase, string line) => Add($"[{phase}] {line}");
    public void Info(string message) => Add(message);
    public void Warning(string message) => Add("warning: " + message);
    public void Batch(string process, int number, int of, Cutover.Progress.BatchStep step) { }
}
