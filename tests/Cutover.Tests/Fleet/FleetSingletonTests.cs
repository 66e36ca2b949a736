using System.Net.Sockets;
using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// Process types and roles across three real sshd hosts (web1: web; jobs1 and jobs2: worker): web and its proxy only
/// where the web role is, workers only where theirs is, and a singleton scheduler on exactly one host of the fleet,
/// never two at once across hosts while it moves between them, a rollback and an agent SIGKILL. The hosts are loopback
/// addresses of this machine, so every scheduler appends to one journal (<see cref="JobWorker"/>).
/// </summary>
[Collection(SecondFleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetSingletonTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output, "one");
    private SshHost Web => fleet.Hosts[0];
    private SshHost Jobs1 => fleet.Hosts[1];
    private SshHost Jobs2 => fleet.Hosts[2];
    private IEnumerable<SshHost> Hosts => fleet.Hosts;
    private string Source => _bed.Source;
    private string SchedulerJournal => _bed.Dir.Combine("scheduler.log");
    private string WorkerJournal => _bed.Dir.Combine("worker.log");

    public void Dispose()
    {
        foreach (var host in Hosts) host.KillAgent();
        _bed.KillLeftovers(Hosts);
        _bed.Dispose();
    }

    /// <summary>
    /// web1 first and the primary by default (it has no worker role, so the scheduler goes to the first worker host in
    /// config order) unless <paramref name="primary"/> names another; every host switched in one batch unless
    /// Cutover orders them.
    /// </summary>
    private string Config(Dictionary<SshHost, int> ports, SshHost? primary = null)
    {
        var path = _bed.NodeConfig(Hosts, ports, instances: 2, run: $"env:\n  JOB_LOG: {WorkerJournal}", hostExtra: h => $", roles: [{(h == Web ? "web" : "worker")}]{(h == primary ? ", primary: true" : "")}", body: $"""
            fleet:
              parallel: 3
            processes:
              worker:
                command: node worker.js
                roles: [worker]
                restart:
                  min_uptime: 300ms
              scheduler:
                command: env JOB_LOG={SchedulerJournal} sh -c 'echo scheduler up; exec node worker.js'
                roles: [worker]
                singleton: true
                stop_signal: SIGTERM
                kill_timeout: 5s
                restart:
                  min_uptime: 300ms
            """);
        return path;
    }

    private async Task Deploy(string config, string version)
    {
        File.WriteAllText(Path.Combine(Source, "VERSION"), version);
        var deploy = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
    }

    /// <summary>The app's instance ids on a host, as its agent recorded them (web: app-N, a type: app-type-N).</summary>
    private List<string> InstancesOn(SshHost host)
    {
        var state = Path.Combine(host.AgentHome, "state.json");
        if (!File.Exists(state)) return [];
        var app = JsonDocument.Parse(File.ReadAllText(state)).RootElement.GetProperty("apps").EnumerateArray().SingleOrDefault(a => a.GetProperty("app").GetString() == _bed.App);
        return app.ValueKind == JsonValueKind.Undefined ? [] : app.GetProperty("instances").EnumerateArray().Select(i => i.GetProperty("id").GetString()!).Order(StringComparer.Ordinal).ToList();
    }

    private static bool Listening(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private void AssertSchedulerOnlyOn(SshHost chosen)
    {
        foreach (var host in Hosts)
            Assert.Equal(host == chosen ? 1 : 0, InstancesOn(host).Count(i => i == $"{_bed.App}-scheduler-0"));
    }

    [Fact]
    public async Task Roles_place_web_and_workers_and_the_singleton_runs_on_one_host_never_two_at_once_across_moves_rollback_and_an_agent_kill()
    {
        var ports = Hosts.ToDictionary(h => h, _ => Cutover.Platform.LoopbackPort.Free());
        AppFactory.CopyTree(Path.Combine(AppContext.BaseDirectory, "examples", "node-app"), Source);
        JobWorker.WriteInto(Source, "idle");

        // jobs2 primary: the scheduler runs there (the primary carries its role).
        var config = Config(ports, primary: Jobs2);
        await Deploy(config, "1");
        Assert.Equal([$"{_bed.App}-0", $"{_bed.App}-1"], InstancesOn(Web));
        foreach (var jobs in new[] { Jobs1, Jobs2 })
        {
            Assert.Contains($"{_bed.App}-worker-0", InstancesOn(jobs));
            Assert.DoesNotContain(InstancesOn(jobs), i => i == $"{_bed.App}-0" || i == $"{_bed.App}-1");
            // No web role: no proxy at all, so its listen address is not listening.
            Assert.False(Listening(ports[jobs]), $"{jobs.Name} has no web role but listens on {ports[jobs]}");
        }
        Assert.True(Listening(ports[Web]));
        AssertSchedulerOnlyOn(Jobs2);

        // No primary: web1 is the primary and has no worker role, so the first worker host, jobs1, takes the scheduler.
        // jobs1 comes before jobs2 in the config, yet jobs2 must stop it before jobs1 starts it.
        config = Config(ports);
        await Deploy(config, "2");
        AssertSchedulerOnlyOn(Jobs1);

        var rollback = await _bed.Cli("rollback", "-c", config);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        AssertSchedulerOnlyOn(Jobs1);

        // `restart scheduler` goes to its one host only (stop-first there); `scale scheduler=1` cannot start a second one elsewhere.
        var restart = await _bed.Cli("restart", "scheduler", "-c", config);
        Assert.True(restart.ExitCode == 0, restart.All);
        Assert.Contains($"restart: {_bed.App} on 1 hosts", restart.Stdout);
        var scale = await _bed.Cli("scale", "scheduler=1", "--hosts", Jobs2.Name, "-c", config);
        Assert.Equal(2, scale.ExitCode);
        Assert.Contains($"scale: none of the selected hosts ({Jobs2.Name}) runs scheduler", scale.Stderr);
        AssertSchedulerOnlyOn(Jobs1);
        // Its logs from every host: the ones whose config leaves it out just have none (jobs2 has the lines of its time there).
        var logs = await _bed.Cli("logs", "--process", "scheduler", "-n", "1000", "-c", config);
        Assert.True(logs.ExitCode == 0, logs.All);
        Assert.Contains(logs.Stdout.Split('\n'), l => l.StartsWith(Jobs1.Name, StringComparison.Ordinal));
        Assert.DoesNotContain(logs.Stdout.Split('\n'), l => l.StartsWith(Web.Name, StringComparison.Ordinal));

        // The agent that runs it SIGKILLed: the next deploy starts it again, which ends the orphan before starting one.
        FleetBed.StopAgent(Jobs1, 9);
        await Deploy(config, "3");
        AssertSchedulerOnlyOn(Jobs1);
        await Task.Delay(500);

        var journal = JobWorker.Read(SchedulerJournal);
        output.WriteLine(string.Join("\n", journal.Where(e => e.What != "alive").Select(e => $"{e.Line} {e.Ms} {e.Version}:{e.Pid} {e.What}")));
        Assert.Empty(JobWorker.Overlaps(journal));
        // jobs2's first, its replacement, jobs1's, the rollback's, the restart's, the restarted agent's and/or the last deploy's.
        Assert.True(journal.Select(e => e.Pid).Distinct().Count() >= 6, $"{journal.Select(e => e.Pid).Distinct().Count()} scheduler lives");
        // The workers ran on both worker hosts (two at once is fine for them), and never on web1.
        Assert.DoesNotContain(Hosts.Where(h => h == Web).SelectMany(InstancesOn), i => i.Contains("-worker-"));
    }
}
