using System.Diagnostics;
using System.Net.Sockets;
using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// The rolling strategy end to end through the real CLI and a real agent process (CUTOVER_HOME in a temp dir):
/// deploys under load, status, logs, stop/start, an agent restart that restores the app, and bad input.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class AgentTests(ITestOutputHelper output) : IDisposable
{
    private readonly TempDir _dir = new();
    private string Home => _dir.Combine("home");
    private string Source => _dir.Combine("src");

    public void Dispose()
    {
        AgentProcess.Stop(Home, 9); // no graceful stop first: it asserted nothing, only took time (see AgentBed)
        OwnedProcesses.KillByEnvironment("CUTOVER_HOME", Home);
        _dir.Dispose();
    }

    private string Config(int port, string app = "node", string command = "node server.js")
    {
        var path = _dir.Combine($"{app}.yml");
        File.WriteAllText(path, $"""
            app: {app}
            strategy: rolling
            root: {_dir.Combine("root-" + app)}
            run:
              command: {command}
              instances: 2
              ready: message
              ready_timeout: 5s
            proxy:
              listen: 127.0.0.1:{port}
              drain_timeout: 5s
            health:
              interval: 200ms
            rolling:
              monitor: 200ms
            """);
        return path;
    }

    private void WriteVersion(string version)
    {
        if (!Directory.Exists(Source)) AppFactory.CopyTree(Path.Combine(AppContext.BaseDirectory, "examples", "node-app"), Source);
        File.WriteAllText(Path.Combine(Source, "VERSION"), version);
    }

    private async Task<CliResult> Cli(params string[] args)
    {
        var start = CutoverCli.StartInfo(_dir.Path, args);
        start.Environment["CUTOVER_HOME"] = Home;
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task Deploys_through_the_agent_fail_no_request_and_survive_an_agent_restart()
    {
        var port = HealthServer.FreePort();
        var config = Config(port);
        WriteVersion("1");
        var first = await Cli("deploy", Source, "-c", config);
        Assert.True(first.ExitCode == 0, first.All);
        Assert.Contains("started the agent in the background", first.Stdout);
        Assert.Equal("600", Convert.ToString((int)File.GetUnixFileMode(Path.Combine(Home, "agent.sock")) & 0x1FF, 8));

        await using (var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 8, maxDuration: TimeSpan.FromMinutes(2)))
        {
            double doneMs = 0;
            foreach (var version in new[] { "2", "1", "2" })
            {
                WriteVersion(version);
                var deploy = await Cli("deploy", Source, "-c", config, "--probe", $"http://127.0.0.1:{port}/", "--probe-rate", "200");
                Assert.True(deploy.ExitCode == 0, deploy.All);
                Assert.Contains("batch 2/2: done", deploy.Stdout);
                Assert.Matches(@"probe: [1-9]\d* requests in [\d.]+s, 0 failed", deploy.Stdout);
                doneMs = load.NowMs;
            }
            var rollback = await Cli("rollback", "-c", config);
            Assert.True(rollback.ExitCode == 0, rollback.All);
            doneMs = load.NowMs;
            await Task.Delay(500);
            var samples = await load.StopAsync();
            output.WriteLine($"{samples.Count} requests through the agent's proxy, {samples.Count(s => s.Status != 200)} failed");
            Assert.Equal(0, samples.Count(s => s.Status != 200));
            Assert.All(samples.Where(s => s.StartMs > doneMs), s => Assert.Equal("1", s.Version));
        }

        var status = JsonDocument.Parse((await Cli("status", "--json", "-c", config)).Stdout).RootElement;
        var instances = status.GetProperty("agent").GetProperty("instances").EnumerateArray().ToList();
        Assert.Equal(2, instances.Count);
        foreach (var i in instances)
        {
            Assert.Equal("ready", i.GetProperty("state").GetString());
            Assert.True(i.GetProperty("pid").GetInt32() > 0);
            Assert.True(i.GetProperty("port").GetInt32() > 0);
            Assert.True(i.GetProperty("memory_bytes").GetInt64() > 0);
            Assert.Equal(0, i.GetProperty("restarts").GetInt32());
        }
        var logs = await Cli("logs", "-c", config, "--instance", "1", "-n", "1000");
        Assert.Contains("node-1", logs.Stdout);
        Assert.DoesNotContain("node-0 ", logs.Stdout);
        Assert.Contains("SIGINT: closing", logs.Stdout);

        // stop drains everything (the proxy answers 503), start brings the release back
        Assert.Equal(0, (await Cli("stop", "-c", config)).ExitCode);
        using var client = new HttpClient();
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, (await client.GetAsync($"http://127.0.0.1:{port}/")).StatusCode);
        Assert.Equal(0, (await Cli("start", "-c", config)).ExitCode);
        Assert.StartsWith("hello from 1", await client.GetStringAsync($"http://127.0.0.1:{port}/"));

        // SIGTERM: the agent drains and exits; started again, it restores the app from its state
        AgentProcess.Stop(Home, 15);
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetStringAsync($"http://127.0.0.1:{port}/"));
        var agent = CutoverCli.StartInfo(_dir.Path, "agent");
        agent.Environment["CUTOVER_HOME"] = Home;
        using var restarted = Process.Start(agent)!;
        string? body = null;
        await Wait.WithinAsync(async () =>
        {
            try { body = await client.GetStringAsync($"http://127.0.0.1:{port}/"); }
            catch (HttpRequestException) { }
            return body is not null;
        }, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(100));
        Assert.StartsWith("hello from 1", body);
    }

    [Fact]
    public async Task Bad_input_gets_a_clear_error_and_what_serves_keeps_serving()
    {
        var port = HealthServer.FreePort();
        var config = Config(port);
        WriteVersion("1");
        Assert.Equal(0, (await Cli("deploy", Source, "-c", config)).ExitCode);

        // a command that does not exist
        var broken = await Cli("deploy", Source, "-c", Config(port, command: "no-such-server --port $PORT"));
        Assert.Equal(1, broken.ExitCode);
        Assert.Contains("exited with code 127 before it was ready", broken.Stderr);
        Assert.Contains("not found", broken.Stderr);

        // a second app claiming the same listen address
        var clash = await Cli("deploy", Source, "-c", Config(port, app: "other"));
        Assert.Equal(1, clash.ExitCode);
        Assert.Contains("app 'node' already claims every host (no proxy.hosts) with path_prefix / on", clash.Stderr);

        // a proxy port another process holds
        using var squatter = new TcpListener(System.Net.IPAddress.Loopback, 0);
        squatter.Start();
        var taken = ((System.Net.IPEndPoint)squatter.LocalEndpoint).Port;
        var busy = await Cli("deploy", Source, "-c", Config(taken, app: "third"));
        Assert.Equal(1, busy.ExitCode);
        Assert.Contains("address is already in use", busy.Stderr);

        using var client = new HttpClient();
        Assert.StartsWith("hello from 1", await client.GetStringAsync($"http://127.0.0.1:{port}/"));

        // one agent, many apps: a second app on its own address runs beside the first
        var otherPort = HealthServer.FreePort();
        var other = await Cli("deploy", Source, "-c", Config(otherPort, app: "other"));
        Assert.True(other.ExitCode == 0, other.All);
        Assert.StartsWith("hello from 1", await client.GetStringAsync($"http://127.0.0.1:{otherPort}/"));
        Assert.StartsWith("hello from 1", await client.GetStringAsync($"http://127.0.0.1:{port}/"));
        var apps = JsonDocument.Parse((await Cli("status", "--json", "-c", Config(otherPort, app: "other"))).Stdout).RootElement;
        Assert.Equal("other", apps.GetProperty("agent").GetProperty("app").GetString());
    }

    [Fact]
    public async Task Only_the_agents_own_user_may_use_the_control_socket()
    {
        Assert.True(Environment.UserName == "root", "this test switches to uid 65534 with setpriv and needs root, as CI has");
        var agentStart = CutoverCli.StartInfo(_dir.Path, "agent");
        agentStart.Environment["CUTOVER_HOME"] = Home;
        var agentLog = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var agent = new Process { StartInfo = agentStart };
        agent.OutputDataReceived += (_, e) => { if (e.Data is not null) agentLog.Enqueue(e.Data); };
        agent.Start();
        agent.BeginOutputReadLine();
        var socket = Path.Combine(Home, "agent.sock");
        await Wait.UntilAsync(() => File.Exists(Path.Combine(Home, "agent.pid")), TimeSpan.FromSeconds(30), "the agent to write agent.pid");
        // Open the file permissions wide, so that only the peer-credential check stands in the way.
        File.SetUnixFileMode(_dir.Path, (UnixFileMode)Convert.ToInt32("711", 8));
        File.SetUnixFileMode(Home, (UnixFileMode)Convert.ToInt32("711", 8));
        File.SetUnixFileMode(socket, (UnixFileMode)Convert.ToInt32("666", 8));
        static async Task<int> Curl(params string[] prefix)
        {
            using var p = Process.Start(new ProcessStartInfo(prefix[0], prefix[1..]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            await p.WaitForExitAsync();
            return p.ExitCode;
        }
        Assert.Equal(0, await Curl("curl", "-sS", "--max-time", "5", "--unix-socket", socket, "http://agent/v1/apps"));
        Assert.NotEqual(0, await Curl("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
            "curl", "-sS", "--max-time", "5", "--unix-socket", socket, "http://agent/v1/apps"));
        await Wait.WithinAsync(() => agentLog.Any(l => l.Contains("refused a control connection from uid 65534")), TimeSpan.FromSeconds(10));
        Assert.Contains(agentLog, l => l.Contains("refused a control connection from uid 65534"));
    }

    [Fact]
    public async Task Blue_green_through_the_cli_keeps_the_old_set_warm_and_rolls_back_by_switching()
    {
        var port = HealthServer.FreePort();
        var config = _dir.Combine("bg.yml");
        File.WriteAllText(config, $"""
            app: bg
            strategy: blue-green
            root: {_dir.Combine("root-bg")}
            run:
              command: node server.js
              instances: 2
              ready: message
            proxy:
              listen: 127.0.0.1:{port}
              drain_timeout: 5s
            blue_green:
              keep_previous: 10m
              monitor: 300ms
            """);
        WriteVersion("1");
        Assert.Equal(0, (await Cli("deploy", Source, "-c", config)).ExitCode);
        await using var load = new LoadGenerator($"http://127.0.0.1:{port}/", connections: 8, maxDuration: TimeSpan.FromMinutes(1));
        WriteVersion("2");
        var deploy = await Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        Assert.Contains("green: done", deploy.Stdout);

        var status = await Cli("status", "-c", config);
        Assert.Contains("previous set: release", status.Stdout);
        Assert.Contains("warm out of rotation until", status.Stdout);
        var before = JsonDocument.Parse((await Cli("status", "--json", "-c", config)).Stdout).RootElement.GetProperty("agent");
        var warmRelease = before.GetProperty("previous").GetProperty("release").GetString();

        var rollback = await Cli("rollback", "-c", config);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        Assert.Contains("no process started", rollback.Stdout);
        var rolledAt = load.NowMs;
        await Task.Delay(300);
        var samples = await load.StopAsync();
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.All(samples.Where(s => s.StartMs > rolledAt), s => Assert.Equal("1", s.Version));
        var after = JsonDocument.Parse((await Cli("status", "--json", "-c", config)).Stdout).RootElement.GetProperty("agent");
        Assert.Equal(warmRelease, after.GetProperty("release").GetString());
    }
}
