using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Cutover.Bench;

/// <summary>
/// Issue 12: replacing the proxy's own process under load. Three ways, alternating, each under the same probe load (16
/// keep-alive clients sending back to back, every request recorded): `cutover agent upgrade` (the handover), the old
/// path (SIGTERM the agent as `systemctl restart` does, then `cutover agent` again, which restores the app), and
/// `nginx -s reload` as the reference (nginx answering `return 200` itself). For each: the time from the command to the
/// new process serving, and the requests that failed (non-200 or a connection error).
/// </summary>
public static class UpgradeBenchmark
{
    private const int Clients = 16;

    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = args is [var r, ..] && int.TryParse(r, out var parsed) ? parsed : 3;
        var repo = Directory.GetCurrentDirectory();
        using var work = new ProxyBenchmark.TempWork();
        var home = Path.Combine(work.Path, "home");
        var cutoverPort = Cutover.Platform.LoopbackPort.Free();
        ProxyBenchmark.DeployNginxBackend(work.Path, "upgradebench", """return 200 "hello\n";""", $"  listen: 127.0.0.1:{cutoverPort}\n  drain_timeout: 5s\n");
        var nginxPort = Cutover.Platform.LoopbackPort.Free();
        using var nginx = ProxyBenchmark.StartNginx(work.Path, "reference", $$"""
            server { listen 127.0.0.1:{{nginxPort}}; keepalive_requests 1000000; location / { return 200 "hello\n"; } }
            """);
        await Task.Delay(500);
        var nginxDir = Path.Combine(work.Path, "reference");

        var results = new Dictionary<string, List<(double ServingMs, double CommandMs, int Requests, int Failed)>>
        {
            ["upgrade"] = [], ["restart"] = [], ["nginx"] = [],
        };
        try
        {
            for (var round = 0; round < rounds; round++)
            {
                results["upgrade"].Add(await UnderLoadAsync(cutoverPort, () =>
                {
                    var old = AgentPid(home);
                    var newServing = Task.Run(() => WaitFor(() => AgentPid(home) != old));
                    var clock = Stopwatch.StartNew();
                    ProxyBenchmark.RunCutover(home, "agent", "upgrade");
                    var command = clock.Elapsed.TotalMilliseconds;
                    return (newServing.Result, command);
                }));
                results["nginx"].Add(await UnderLoadAsync(nginxPort, () =>
                {
                    var master = int.Parse(File.ReadAllText(Path.Combine(nginxDir, "nginx.pid")).Trim(), CultureInfo.InvariantCulture);
                    var oldWorkers = Children(master);
                    var clock = Stopwatch.StartNew();
                    Measure.Capture("/usr/sbin/nginx", "-p", nginxDir, "-c", Path.Combine(nginxDir, "nginx.conf"), "-s", "reload");
                    var command = clock.Elapsed.TotalMilliseconds;
                    // Serving: a worker of the new generation runs (the old ones finish their connections and leave).
                    var serving = WaitFor(() => Children(master).Except(oldWorkers).Any(), clock);
                    return (serving, command);
                }));
                results["restart"].Add(await UnderLoadAsync(cutoverPort, () =>
                {
                    var old = AgentPid(home);
                    var clock = Stopwatch.StartNew();
                    Measure.Capture("kill", "-TERM", old.ToString(CultureInfo.InvariantCulture));
                    WaitFor(() => !Directory.Exists($"/proc/{old}"), clock);
                    StartAgent(home);
                    var command = clock.Elapsed.TotalMilliseconds;
                    // Serving: the restored app answers through the new agent's proxy again.
                    var serving = WaitFor(() => Answers(cutoverPort), clock);
                    return (serving, command);
                }));
            }
        }
        finally
        {
            var agent = AgentPid(home);
            Measure.Capture("kill", "-TERM", agent.ToString(CultureInfo.InvariantCulture));
            for (var i = 0; i < 300 && Directory.Exists($"/proc/{agent}"); i++) Thread.Sleep(100);
        }

        var sb = new StringBuilder();
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores; {rounds} rounds of each, alternating; {Clients} keep-alive clients sending back to back to the port being replaced, from 1 s before the command to 1 s after the new process serves. The app: one nginx instance (`return 200`) run by the agent; the reference nginx answers `return 200` itself.");
        sb.AppendLine();
        sb.AppendLine("| way | command to the new process serving (median / max) | command returned (median / max) | requests | failed |");
        sb.AppendLine("|---|---|---|---|---|");
        foreach (var (name, key) in new[] { ("`cutover agent upgrade` (handover)", "upgrade"), ("old path: SIGTERM the agent, `cutover agent` again", "restart"), ("`nginx -s reload` (reference)", "nginx") })
        {
            var rows = results[key];
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {name} | {Measure.Median(rows.Select(x => x.ServingMs)):0.0} / {rows.Max(x => x.ServingMs):0.0} ms | {Measure.Median(rows.Select(x => x.CommandMs)):0.0} / {rows.Max(x => x.CommandMs):0.0} ms | {rows.Sum(x => x.Requests)} | {rows.Sum(x => x.Failed)} |"));
        }
        sb.AppendLine();
        sb.AppendLine("\"New process serving\": upgrade, when agent.pid names the new agent (it writes it once it has committed and accepts on the handed sockets); old path, when the proxy answers 200 again after the restart restored the app; nginx, when a worker of the new generation runs. \"Command returned\": the upgrade returns once the old agent has drained and left; the old path's command is the stop plus the start; `nginx -s reload` only signals the master.");
        var report = sb.ToString();
        Console.WriteLine(report);
        Directory.CreateDirectory(Path.Combine(repo, "bench", "results"));
        File.WriteAllText(Path.Combine(repo, "bench", "results", $"upgrade-{DateTime.UtcNow:yyyyMMdd-HHmm}.md"), report);
        StagingBenchmark.UpdateReadme(Path.Combine(repo, "bench", "README.md"), "upgrade", report);
        return 0;
    }

    /// <summary>Runs <paramref name="act"/> while the probe load runs against <paramref name="port"/>; its times, the requests and the failed ones.</summary>
    private static async Task<(double ServingMs, double CommandMs, int Requests, int Failed)> UnderLoadAsync(int port, Func<(double Serving, double Command)> act)
    {
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        var counts = new (int Requests, int Failed)[Clients];
        using var client = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = Clients, PooledConnectionLifetime = Timeout.InfiniteTimeSpan, UseProxy = false })
        { Timeout = TimeSpan.FromSeconds(10) };
        var workers = Enumerable.Range(0, Clients).Select(i => Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                counts[i].Requests++;
                try
                {
                    using var response = await client.GetAsync($"http://127.0.0.1:{port}/", CancellationToken.None);
                    await response.Content.ReadAsStringAsync(CancellationToken.None);
                    if ((int)response.StatusCode != 200) counts[i].Failed++;
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    counts[i].Failed++;
                    await Task.Delay(1); // a refused connection returns at once: do not spin
                }
            }
        })).ToArray();
        await Task.Delay(1000);
        var (serving, command) = await Task.Run(act);
        await Task.Delay(1000);
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        return (serving, command, counts.Sum(c => c.Requests), counts.Sum(c => c.Failed));
    }

    private static int AgentPid(string home) =>
        int.TryParse(File.ReadAllText(Path.Combine(home, "agent.pid")).Trim(), CultureInfo.InvariantCulture, out var pid) ? pid : 0;

    /// <summary>Milliseconds until <paramref name="condition"/> holds (polled every 2 ms, at most 2 minutes) on <paramref name="clock"/>.</summary>
    private static double WaitFor(Func<bool> condition, Stopwatch? clock = null)
    {
        clock ??= Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromMinutes(2)) throw new TimeoutException("the new process did not serve within 2 minutes");
            Thread.Sleep(2);
        }
        return clock.Elapsed.TotalMilliseconds;
    }

    private static int[] Children(int pid) =>
        File.ReadAllText($"/proc/{pid}/task/{pid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();

    /// <summary>True when http://127.0.0.1:<paramref name="port"/>/ answers 200 (within 2 s).</summary>
    internal static bool Answers(int port)
    {
        try
        {
            using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            return client.GetAsync($"http://127.0.0.1:{port}/").Result.StatusCode == System.Net.HttpStatusCode.OK;
        }
        catch (AggregateException)
        {
            return false;
        }
    }

    /// <summary>`cutover agent --quiet` in its own session, as a service manager starts it (this build's cutover.dll).</summary>
    private static void StartAgent(string home)
    {
        var cli = Environment.GetEnvironmentVariable("CUTOVER_BENCH_CLI") is { Length: > 0 } other ? other : Path.Combine(AppContext.BaseDirectory, "cutover.dll");
        var start = new ProcessStartInfo("/bin/sh", ["-c", "exec setsid \"$@\" > /dev/null 2>&1 < /dev/null", "sh", "dotnet", cli, "agent", "--quiet"]) { UseShellExecute = false };
        start.Environment["CUTOVER_HOME"] = home;
        Process.Start(start)!.Dispose();
    }
}
