using System.Diagnostics;
using System.Globalization;
using System.Text;
using Cutover.Agent;
using Cutover.Progress;

namespace Cutover.Bench;

public static partial class SwitchBenchmark
{
    /// <summary>
    /// One command's split inside the agent: the whole activate request (sent to result line read, over agent.sock from
    /// this long-lived process, so no CLI start-up is in it), the green phase and the switch phase as the agent timed them,
    /// and the rest: everything else the agent did for the request (config read, reconfigure, state.json, the answer).
    /// </summary>
    private sealed record AgentSplit(double Request, double Green, double Switch)
    {
        public double Rest => Request - Green - Switch;
    }

    /// <param name="CpuPerDeploy">The agent's user + system CPU per deploy and per rollback, in quiet rounds (no load: the
    /// proxy's own work would swamp it), from /proc/&lt;pid&gt;/stat over all of them.</param>
    /// <param name="Fsyncs">fsync/fdatasync calls of the agent per deploy and per rollback (up to 1 s after its answer), and the
    /// time its threads spent in them, by strace -f -c in one quiet round each; null without strace.</param>
    /// <param name="Steps">Per step of the agent's activation line in agent.log (ActivationTrace), the median ms over the
    /// loaded deploys and over the loaded rollbacks.</param>
    private sealed record AgentResult(Result Switch, List<AgentSplit> Deploys, List<AgentSplit> Rollbacks,
        (double Deploy, double Rollback) CpuPerDeploy, (string Deploy, string Rollback)? Fsyncs,
        IReadOnlyList<(string Step, double Deploy, double Rollback)> Steps)
    {
        public const string Header =
            "| command (builtin, agent) | command to 100% new (median / max) | activate request to result (median / max) | of which the green set starting (median / max) | of which the switch (median / max) | of which the agent's rest (median / max) | agent CPU per command (no load) | fsyncs per command (time in them, no load) |\n" +
            "|---|---|---|---|---|---|---|---|";

        public string[] Rows(Func<List<double>, string, string> ms)
        {
            string Row(string what, List<AgentSplit> splits, List<double> toNew, double cpu, string? fsyncs) =>
                $"| {what} | {ms(toNew, "0.0")} | {ms(splits.Select(s => s.Request).ToList(), "0.0")} | {ms(splits.Select(s => s.Green).ToList(), "0.0")} | " +
                $"{ms(splits.Select(s => s.Switch).ToList(), "0.00")} | {ms(splits.Select(s => s.Rest).ToList(), "0.0")} | " +
                $"{cpu.ToString("0", CultureInfo.InvariantCulture)} ms | {fsyncs ?? "-"} |";
            return
            [
                Row("deploy (green start + switch)", Deploys, Switch.Deploy, CpuPerDeploy.Deploy, Fsyncs?.Deploy),
                Row("rollback (to the warm set)", Rollbacks, Switch.Rollback, CpuPerDeploy.Rollback, Fsyncs?.Rollback),
            ];
        }

        public string Render(Func<List<double>, string, string> ms)
        {
            var sb = new StringBuilder();
            sb.AppendLine();
            sb.AppendLine("The agent alone (a real `cutover agent`, its proxy taking the same load; each activate request sent over agent.sock from the benchmark's own process, as the CLI sends it, so no CLI start-up is in it):");
            sb.AppendLine();
            sb.AppendLine(Header);
            foreach (var row in Rows(ms)) sb.AppendLine(row);
            sb.AppendLine();
            sb.AppendLine("\"Green\" and \"switch\" are the agent's own phase times (BlueGreenSwitch's `green` and `switch` progress events); \"the agent's rest\" is the request's time minus both: reading the request and the config, reconfiguring the app, state.json, and writing the answer. " +
                          $"{Switch.Requests} requests, {Switch.Failed} failed.");
            if (Steps.Count > 0)
            {
                static string F(double v) => v.ToString("0.00", CultureInfo.InvariantCulture);
                sb.AppendLine();
                sb.AppendLine("Inside the agent, from its activation line in agent.log (median ms over the loaded commands; `instances` holds green and the switch; `state` is state.json written durably before the answer):");
                sb.AppendLine();
                sb.AppendLine("| step | " + string.Join(" | ", Steps.Select(s => s.Step)) + " |");
                sb.AppendLine("|---|" + string.Concat(Steps.Select(_ => "---|")));
                sb.AppendLine("| deploy | " + string.Join(" | ", Steps.Select(s => F(s.Deploy))) + " |");
                sb.AppendLine("| rollback | " + string.Join(" | ", Steps.Select(s => F(s.Rollback))) + " |");
            }
            return sb.ToString();
        }
    }

    /// <summary>The green and switch phases as the agent reported them in its progress stream.</summary>
    private sealed class PhaseTimes : IDeployProgress
    {
        public double Green { get; private set; }
        public double Switch { get; private set; }
        public void PhaseStarted(string phase) { }
        public void PhaseCompleted(string phase, TimeSpan elapsed, string? detail = null)
        {
            if (phase == "green") Green = elapsed.TotalMilliseconds;
            if (phase == "switch") Switch = elapsed.TotalMilliseconds;
        }
        public void PhaseFailed(string phase, TimeSpan elapsed, string error) { }
        public void Output(string phase, string line) { }
        public void Info(string message) { }
        public void Warning(string message) { }
        public void Batch(string process, int number, int of, BatchStep step) { }
    }

    /// <summary>
    /// Blue-green deploys and rollbacks straight to a real agent: the first deploy through the CLI (which starts the agent
    /// and writes the release), then activate requests from here for fresh release directories and back to release 0's
    /// warm set, under the load; then quiet rounds for the agent's CPU per command, and one each under strace for its fsyncs.
    /// </summary>
    private static async Task<AgentResult> MeasureAgentAsync(string repo, int switches, Progress report)
    {
        using var work = new ProxyBenchmark.TempWork();
        var home = Path.Combine(work.Path, "home");
        var port = Cutover.Platform.LoopbackPort.Free();
        var root = Path.Combine(work.Path, "root");
        var config = Path.Combine(work.Path, "cutover.yml");
        const string app = "swagent";
        File.WriteAllText(config, BlueGreenConfig(app, root, port));
        string Build(string version) => BuildNodeApp(repo, work.Path, version);
        int? agentPid = null;
        try
        {
            // Metrics off: the agent's CPU is the switch's, and another agent on this machine may hold the default address.
            ProxyBenchmark.RunCutover(home, new Dictionary<string, string> { ["CUTOVER_METRICS_LISTEN"] = "off" }, "deploy", Build("0"), "-c", config);
            agentPid = int.Parse(File.ReadAllText(Path.Combine(home, "agent.pid")).Trim(), CultureInfo.InvariantCulture);
            var live = System.Text.Json.JsonDocument.Parse(ProxyBenchmark.RunCutover(home, "status", "--json", "-c", config)).RootElement
                .GetProperty("current").GetProperty("id").GetString()!;
            var liveDir = Path.Combine(root, "releases", live);
            using var client = new AgentClient(new AgentHome(home));
            // This process's HttpClient over the socket met once before timing, so its first use is not the agent's time.
            await client.AppsAsync(CancellationToken.None);
            // Release ids as the CLI makes them (the agent reads a release's env file by its id); each deploy a new one.
            var next = 0;
            async Task<AgentSplit> ActivateAsync(string releaseId, string releaseDir)
            {
                var phases = new PhaseTimes();
                var clock = Stopwatch.StartNew();
                var result = await client.ActivateAsync(config, app, releaseId, releaseDir, phases, CancellationToken.None);
                var request = clock.Elapsed.TotalMilliseconds;
                if (!result.Succeeded) throw new InvalidOperationException($"activate {releaseId}: {result.Error}");
                return new AgentSplit(request, phases.Green, phases.Switch);
            }
            async Task<AgentSplit> DeployAsync()
            {
                next++;
                var id = Cutover.Releases.ReleaseId.Next(DateTimeOffset.UtcNow.AddMinutes(next), []).ToString();
                return await ActivateAsync(id, Build(next.ToString(CultureInfo.InvariantCulture)));
            }

            var (deploys, rollbacks) = (new List<AgentSplit>(), new List<AgentSplit>());
            var commands = new List<Command>();
            List<Sample> all;
            await using (var load = Load.Start($"http://127.0.0.1:{port}/"))
            {
                await Task.Delay(1000);
                for (var i = 1; i <= switches; i++)
                {
                    commands.Add(new Command(load.Now, (next + 1).ToString(CultureInfo.InvariantCulture)));
                    deploys.Add(await DeployAsync());
                    await Task.Delay(1500);
                    commands.Add(new Command(load.Now, "0", Rollback: true));
                    rollbacks.Add(await ActivateAsync(live, liveDir));
                    report.Line($"agent {i}/{switches}: deploy request {Ms(deploys[^1].Request)} (green {Ms(deploys[^1].Green)}, switch {Ms(deploys[^1].Switch, "0.00")}), " +
                                $"rollback request {Ms(rollbacks[^1].Request)} (switch {Ms(rollbacks[^1].Switch, "0.00")})");
                    await Task.Delay(1500);
                }
                all = await load.StopAsync();
            }
            var (deploy, rollback) = Settle(all, commands);
            var steps = AgentSteps(File.ReadAllLines(Path.Combine(home, "agent.log")), app, live, switches);

            // Quiet rounds: the agent's CPU per command without the proxy's.
            report.Line($"agent: {switches} quiet rounds for its CPU per command, then one of each under strace for its fsyncs");
            var (deployCpu, rollbackCpu) = (TimeSpan.Zero, TimeSpan.Zero);
            for (var i = 0; i < switches; i++)
            {
                var before = ProxyBenchmark.ProcessCpu(agentPid.Value);
                await DeployAsync();
                var between = ProxyBenchmark.ProcessCpu(agentPid.Value);
                await ActivateAsync(live, liveDir);
                var after = ProxyBenchmark.ProcessCpu(agentPid.Value);
                (deployCpu, rollbackCpu) = (deployCpu + (between - before), rollbackCpu + (after - between));
                await Task.Delay(300);
            }
            (string, string)? fsyncs = File.Exists("/usr/bin/strace")
                ? (await CountFsyncsAsync(agentPid.Value, DeployAsync), await CountFsyncsAsync(agentPid.Value, () => ActivateAsync(live, liveDir)))
                : null;
            return new AgentResult(new Result(deploy, rollback, [], [], all.Count, all.Count(s => !s.Ok)), deploys, rollbacks,
                (deployCpu.TotalMilliseconds / switches, rollbackCpu.TotalMilliseconds / switches), fsyncs, steps);
        }
        finally
        {
            if (Environment.GetEnvironmentVariable("CUTOVER_BENCH_AGENT_LOG") is { Length: > 0 } keep && File.Exists(Path.Combine(home, "agent.log")))
                File.Copy(Path.Combine(home, "agent.log"), keep, overwrite: true);
            if (agentPid is { } pid)
            {
                Measure.Capture("kill", "-TERM", pid.ToString(CultureInfo.InvariantCulture));
                for (var i = 0; i < 300 && Directory.Exists($"/proc/{pid}"); i++) Thread.Sleep(100);
            }
        }
    }

    /// <summary>
    /// The agent's "activation of APP release ID (OUTCOME): step 1.23 ms, ...; N ms in all" lines after the first (the CLI's
    /// deploy that started the agent): the loaded rounds' deploys (another release) and rollbacks (back to <paramref name="live"/>),
    /// the median of each step.
    /// </summary>
    private static List<(string Step, double Deploy, double Rollback)> AgentSteps(string[] log, string app, string live, int rounds)
    {
        var lines = log.Where(l => l.Contains($"activation of {app} release ", StringComparison.Ordinal)).Skip(1).Take(2 * rounds).ToList();
        var parsed = lines.Select(l =>
        {
            var release = l[(l.IndexOf(" release ", StringComparison.Ordinal) + 9)..].Split(' ')[0];
            var body = l[(l.IndexOf("): ", StringComparison.Ordinal) + 3)..];
            var steps = body.Replace(" ms in all", "", StringComparison.Ordinal).Split([", ", "; "], StringSplitOptions.None)
                .Select(part => part.Split(' ')).Where(f => f.Length is 1 or 3)
                .Select(f => (Step: f.Length == 3 ? f[0] : "all", Ms: double.Parse(f.Length == 3 ? f[1] : f[0], CultureInfo.InvariantCulture))).ToList();
            return (Rollback: release == live, Steps: steps);
        }).ToList();
        if (parsed.Count == 0) return [];
        return parsed[0].Steps.Select(s => s.Step).Select(step => (step,
            Median(parsed.Where(p => !p.Rollback), step), Median(parsed.Where(p => p.Rollback), step))).ToList();

        static double Median(IEnumerable<(bool Rollback, List<(string Step, double Ms)> Steps)> of, string step) =>
            of.SelectMany(p => p.Steps.Where(s => s.Step == step).Select(s => s.Ms)).ToList() is { Count: > 0 } values ? Measure.Median(values) : double.NaN;
    }

    /// <summary>fsync + fdatasync calls of every thread of <paramref name="pid"/> during <paramref name="command"/>: strace -f -c attached around it.</summary>
    private static async Task<string> CountFsyncsAsync(int pid, Func<Task<AgentSplit>> command)
    {
        var start = new ProcessStartInfo("/usr/bin/strace", ["-f", "-c", "-e", "trace=fsync,fdatasync", "-p", pid.ToString(CultureInfo.InvariantCulture)])
        { RedirectStandardError = true, UseShellExecute = false };
        using var strace = Process.Start(start)!;
        var summary = strace.StandardError.ReadToEndAsync();
        // strace says nothing once attached; a second is plenty for it to attach to every thread.
        await Task.Delay(1000);
        await command();
        // What the agent does right after answering (the last good copy, the stops a deploy leaves behind) is the command's too.
        await Task.Delay(1000);
        Measure.Capture("kill", "-INT", strace.Id.ToString(CultureInfo.InvariantCulture));
        await strace.WaitForExitAsync();
        // The summary's rows: "% time seconds usecs/call calls errors syscall".
        var rows = (await summary).Split('\n').Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length >= 5 && f[^1] is "fsync" or "fdatasync").ToList();
        var calls = rows.Sum(f => int.Parse(f[3], CultureInfo.InvariantCulture));
        var seconds = rows.Sum(f => double.Parse(f[1], CultureInfo.InvariantCulture));
        return $"{calls} ({(seconds * 1000).ToString("0.0", CultureInfo.InvariantCulture)} ms)";
    }
}
