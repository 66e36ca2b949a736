using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;

namespace Cutover.Bench;

/// <summary>
/// TLS termination, one run, one certificate (ECDSA P-256, made here), one backend (an nginx answering 1 KiB), one
/// load generator (wrk over https): Cutover's proxy as the product runs it (`cutover deploy` of a rolling app with
/// proxy.tls starts the real background `cutover agent`; CPU measured on the agent process) against nginx
/// terminating TLS with `ssl_certificate` and `proxy_pass` to the same backend with upstream keepalive. Two loads:
/// 32 keep-alive connections (requests/s, p99, CPU per request), and a fresh full TLS handshake per request (new
/// connections/s, CPU per connection). Rounds alternate which proxy goes first; the table holds medians.
/// Writes bench/results/tls.md and the "tls" table of bench/README.md.
/// </summary>
public static partial class TlsProxyBenchmark
{
    private static readonly string[] KeepAliveLoad = ["-t2", "-c32", "-d5s", "--latency"];
    // Connection: close makes both proxies close after the answer, and wrk opens a new connection for the next request.
    private static readonly string[] NewConnectionLoad = ["-t2", "-c32", "-d5s", "--latency", "-H", "Connection: close"];

    /// <summary>
    /// wrk keeps each connection's OpenSSL session across its reconnects (ssl_close calls SSL_clear, which keeps the
    /// session), so its second and later handshakes are resumptions: 1,591 of 1,593 against nginx with a session cache.
    /// Preloaded into wrk, this drops the session first, so every handshake is a full one (1,011 of 1,011 measured
    /// against the same nginx). Resolved at run time from the libssl wrk itself loads: no OpenSSL headers needed.
    /// </summary>
    private const string NoResumptionShimSource = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        typedef struct ssl_st SSL;
        int SSL_clear(SSL *ssl)
        {
            static int (*real_clear)(SSL *);
            static int (*set_session)(SSL *, void *);
            if (!real_clear) real_clear = (int (*)(SSL *))dlsym(RTLD_NEXT, "SSL_clear");
            if (!set_session) set_session = (int (*)(SSL *, void *))dlsym(RTLD_NEXT, "SSL_set_session");
            set_session(ssl, 0);
            return real_clear(ssl);
        }
        """;

    public static async Task<int> RunAsync(string[] args)
    {
        var rounds = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
        var repo = StagingBenchmark.FindRepo();
        var loadBefore = LoadAverage();
        await using var paths = await Paths.StartAsync();
        var proxies = new[]
        {
            new Proxy("Cutover's proxy (the `cutover agent` process)", paths.CutoverTlsPort, () => ProxyBenchmark.ProcessCpu(paths.AgentPid),
                () => ContextSwitches([paths.AgentPid])),
            // Not a proxy: the least .NET does to end TLS and relay the GET (TlsFloorServer), what is left without Kestrel's connection layer.
            new Proxy("floor: .NET SslStream on its own accept loop (bench/TlsFloorServer, not a proxy)", paths.FloorPort, () => ProxyBenchmark.ProcessCpu(paths.Floor.Id),
                () => ContextSwitches([paths.Floor.Id])),
            // The same floor on Cutover.Core's Proxy/OpenSsl (OpenSSL driven directly, no SslStream): what that layer costs.
            new Proxy("floor: OpenSSL directly on its own accept loop (bench/TlsFloorServer on Proxy/OpenSsl, not a proxy)", paths.OpenSslFloorPort, () => ProxyBenchmark.ProcessCpu(paths.OpenSslFloor.Id),
                () => ContextSwitches([paths.OpenSslFloor.Id])),
            new Proxy("nginx (`worker_processes auto`)", paths.NginxTlsPort, () => ProxyBenchmark.NginxWorkersCpu(paths.NginxProxy.Pid),
                () => ContextSwitches(NginxWorkers(paths.NginxProxy.Pid))),
        };
        var handshakes = proxies.Select(p => Handshake(p.Port)).ToArray();
        // Warm-up per proxy and load, not counted: connection pools to the backend, and the agent's tiered JIT, which
        // by hand still took a sixth of its CPU 20 s after start under this load (5 s each gets it to steady state).
        foreach (var proxy in proxies)
        {
            Wrk(proxy, ["-t2", "-c32", "-d5s"], null);
            Wrk(proxy, ["-t2", "-c32", "-d5s", "-H", "Connection: close"], paths.NoResumptionShim);
        }
        var keepAlive = proxies.Select(_ => new List<WrkResult>()).ToArray();
        var newConnections = proxies.Select(_ => new List<WrkResult>()).ToArray();
        for (var round = 0; round < rounds; round++)
        {
            // The shared machine's noisy moments land on both proxies alike: who goes first alternates.
            var order = Enumerable.Range(0, proxies.Length).Select(i => (i + round) % proxies.Length).ToArray();
            foreach (var i in order) keepAlive[i].Add(Wrk(proxies[i], KeepAliveLoad, null));
            foreach (var i in order) newConnections[i].Add(Wrk(proxies[i], NewConnectionLoad, paths.NoResumptionShim));
            Console.WriteLine($"  round {round + 1}/{rounds}: keep-alive {string.Join(" / ", keepAlive.Select(r => r[^1].Rps.ToString("0", CultureInfo.InvariantCulture)))} req/s, new connections {string.Join(" / ", newConnections.Select(r => r[^1].Rps.ToString("0", CultureInfo.InvariantCulture)))} /s (Cutover / floor / OpenSSL floor / nginx)");
        }

        var report = Report(rounds, loadBefore, LoadAverage(), proxies, handshakes,
            keepAlive.Select(Median).ToArray(), newConnections.Select(Median).ToArray());
        Console.WriteLine(report);
        Directory.CreateDirectory(Path.Combine(repo, "bench", "results"));
        await File.WriteAllTextAsync(Path.Combine(repo, "bench", "results", "tls.md"), report);
        StagingBenchmark.UpdateReadme(Path.Combine(repo, "bench", "README.md"), "tls", report);
        return 0;
    }

    /// <summary>Serves both proxies until Enter, for profiling (perf, strace) or wrk by hand.</summary>
    public static async Task ServeAsync()
    {
        await using var paths = await Paths.StartAsync();
        Console.WriteLine($"cutover https://127.0.0.1:{paths.CutoverTlsPort}/ (agent pid {paths.AgentPid}, home {paths.Home}) floor https://127.0.0.1:{paths.FloorPort}/ (pid {paths.Floor.Id}) OpenSSL floor https://127.0.0.1:{paths.OpenSslFloorPort}/ (pid {paths.OpenSslFloor.Id}) nginx https://127.0.0.1:{paths.NginxTlsPort}/ (master pid {paths.NginxProxy.Pid}); LD_PRELOAD={paths.NoResumptionShim} turns wrk's session resumption off");
        await Task.Run(Console.ReadLine);
    }

    private static string Report(int rounds, string loadBefore, string loadAfter, Proxy[] proxies, string[] handshakes, WrkResult[] keepAlive, WrkResult[] newConnections)
    {
        var nginx = proxies.Length - 1;
        var sb = new StringBuilder();
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores (1-minute load average {loadBefore} at the start, {loadAfter} at the end); median of {rounds} rounds, the proxies' order rotating by round; wrk -t2 -c32 -d5s over https, proxies, backend and wrk share the machine; one ECDSA P-256 certificate; backend: nginx answering 1 KiB over plain HTTP/1.1 on loopback, the same for both. Negotiated (openssl s_client): " +
            string.Join("; ", proxies.Select((p, i) => $"{ShortName(p)} {handshakes[i]}")) + ".");
        sb.AppendLine();
        sb.AppendLine("Keep-alive: 32 connections, HTTP/1.1, many requests each.");
        sb.AppendLine();
        sb.AppendLine("| proxy | requests/s | p50 | p99 | CPU per request | requests/s vs nginx | p99 vs nginx | CPU per request vs nginx | context switches per request | errors |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        for (var i = 0; i < proxies.Length; i++)
            sb.AppendLine(Row(proxies[i].Name, keepAlive[i], keepAlive[nginx]));
        sb.AppendLine();
        sb.AppendLine("New TLS connections: every request on a fresh connection (`Connection: close`), every handshake a full one (wrk's session resumption turned off), 32 at a time.");
        sb.AppendLine();
        sb.AppendLine("| proxy | new connections/s | p50 | p99 | CPU per connection | connections/s vs nginx | p99 vs nginx | CPU per connection vs nginx | context switches per connection | errors |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        for (var i = 0; i < proxies.Length; i++)
            sb.AppendLine(Row(proxies[i].Name, newConnections[i], newConnections[nginx]));
        sb.AppendLine();
        sb.AppendLine("CPU is the proxy's own user + system time (the agent process; nginx's workers) over the run, divided by the requests (connections) wrk counted; context switches likewise (voluntary and involuntary, summed over every thread of the agent, of nginx's workers). Errors are wrk's non-2xx answers plus socket errors, summed over the rounds.");
        return sb.ToString();

        static string Row(string name, WrkResult r, WrkResult nginx) =>
            $"| {name} | {r.Rps:0} | {r.P50Ms:0.00} ms | {r.P99Ms:0.00} ms | {r.CpuUsPerRequest:0.0} µs | {r.Rps / nginx.Rps:0.00} | {r.P99Ms / nginx.P99Ms:0.00} | {r.CpuUsPerRequest / nginx.CpuUsPerRequest:0.00} | {r.SwitchesPerRequest:0.00} | {r.Errors} |";
        static string ShortName(Proxy p) => p.Name.StartsWith("Cutover", StringComparison.Ordinal) ? "Cutover" : p.Name.StartsWith("floor: OpenSSL", StringComparison.Ordinal) ? "OpenSSL floor" : p.Name.StartsWith("floor", StringComparison.Ordinal) ? "floor" : "nginx";
    }

    /// <param name="Switches">Context switches so far, summed over the serving threads (the scheduling cost CPU alone hides).</param>
    private sealed record Proxy(string Name, int Port, Func<TimeSpan> Cpu, Func<long> Switches);

    private sealed record WrkResult(double Rps, double P50Ms, double P99Ms, double CpuUsPerRequest, double SwitchesPerRequest, long Errors);

    private static WrkResult Median(List<WrkResult> runs) => new(
        Measure.Median(runs.Select(x => x.Rps)), Measure.Median(runs.Select(x => x.P50Ms)), Measure.Median(runs.Select(x => x.P99Ms)),
        Measure.Median(runs.Select(x => x.CpuUsPerRequest)), Measure.Median(runs.Select(x => x.SwitchesPerRequest)), runs.Sum(x => x.Errors));

    /// <summary>Voluntary + involuntary context switches of every thread of <paramref name="pids"/>, from /proc/PID/task/*/status.</summary>
    internal static long ContextSwitches(IEnumerable<int> pids)
    {
        long switches = 0;
        foreach (var pid in pids)
        {
            IEnumerable<string> tasks;
            try { tasks = Directory.EnumerateDirectories($"/proc/{pid}/task").ToList(); }
            catch (IOException) { continue; }
            foreach (var task in tasks)
            {
                string[] lines;
                // A thread that ended between the listing and the read counts no more.
                try { lines = File.ReadAllLines(Path.Combine(task, "status")); }
                catch (IOException) { continue; }
                foreach (var line in lines)
                    if (line.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal) || line.StartsWith("nonvoluntary_ctxt_switches:", StringComparison.Ordinal))
                        switches += long.Parse(line[(line.IndexOf(':') + 1)..].Trim(), CultureInfo.InvariantCulture);
            }
        }
        return switches;
    }

    /// <summary>The worker processes of an nginx master: the processes whose parent it is (as NginxWorkersCpu counts them).</summary>
    private static List<int> NginxWorkers(int masterPid)
    {
        var workers = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); }
            catch (IOException) { continue; }
            // After the ")" that closes the command name: state, then ppid.
            if (int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], CultureInfo.InvariantCulture) == masterPid) workers.Add(pid);
        }
        return workers;
    }

    /// <summary>One wrk run over https against <paramref name="proxy"/>, with the proxy's CPU over the run.</summary>
    private static WrkResult Wrk(Proxy proxy, string[] load, string? preload)
    {
        var start = new ProcessStartInfo("wrk") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in load) start.ArgumentList.Add(a);
        start.ArgumentList.Add($"https://127.0.0.1:{proxy.Port}/");
        if (preload is not null) start.Environment["LD_PRELOAD"] = preload;
        var cpuBefore = proxy.Cpu();
        var switchesBefore = proxy.Switches();
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var cpu = proxy.Cpu() - cpuBefore;
        var switches = proxy.Switches() - switchesBefore;
        if (process.ExitCode != 0) throw new InvalidOperationException($"wrk {string.Join(' ', load)} failed: {stderr.Result}");
        var requests = long.Parse(ProxyBenchmark.RequestsPattern().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var rps = double.Parse(ProxyBenchmark.RpsPattern().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var non2xx = ProxyBenchmark.ErrorsPattern().Match(output) is { Success: true } m ? long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
        var socketErrors = SocketErrorsPattern().Match(output) is { Success: true } s
            ? Enumerable.Range(1, 4).Sum(g => long.Parse(s.Groups[g].Value, CultureInfo.InvariantCulture)) : 0;
        return new WrkResult(rps, ProxyBenchmark.Latency(output, "50%"), ProxyBenchmark.Latency(output, "99%"),
            cpu.TotalMicroseconds / Math.Max(1, requests), (double)switches / Math.Max(1, requests), non2xx + socketErrors);
    }

    [GeneratedRegex(@"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")]
    private static partial Regex SocketErrorsPattern();

    /// <summary>What a handshake with the proxy negotiates (protocol, cipher suite, key exchange), from openssl s_client -brief.</summary>
    private static string Handshake(int port)
    {
        var start = new ProcessStartInfo("openssl", ["s_client", "-brief", "-connect", $"127.0.0.1:{port}", "-servername", "localhost"])
        { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var text = process.StandardError.ReadToEnd() + stdout.Result;
        process.WaitForExit();
        string Field(string name) => Regex.Match(text, $@"^{Regex.Escape(name)}:\s*(.+)$", RegexOptions.Multiline) is { Success: true } m ? m.Groups[1].Value.Trim() : "?";
        return $"{Field("Protocol version")} {Field("Ciphersuite")}, {Field("Signature type")} signature, {Field("Server Temp Key")} key exchange";
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";

    /// <summary>
    /// The two proxies in front of one backend. Cutover's is the product as it runs: `cutover deploy` of a rolling app
    /// whose cutover.yml has proxy.tls with the certificate's PEM files starts the real `cutover agent` in the
    /// background; the app's one instance is the backend nginx, and nginx the proxy forwards to that same instance.
    /// </summary>
    private sealed class Paths : IAsyncDisposable
    {
        private readonly ProxyBenchmark.TempWork _work;

        private Paths(ProxyBenchmark.TempWork work, int agentPid, ProxyBenchmark.PeerProcess nginxProxy, int cutoverTlsPort, int nginxTlsPort, string noResumptionShim,
            Process floor, int floorPort, Process openSslFloor, int openSslFloorPort)
        {
            OpenSslFloor = openSslFloor;
            OpenSslFloorPort = openSslFloorPort;
            Floor = floor;
            FloorPort = floorPort;
            _work = work;
            AgentPid = agentPid;
            NginxProxy = nginxProxy;
            CutoverTlsPort = cutoverTlsPort;
            NginxTlsPort = nginxTlsPort;
            NoResumptionShim = noResumptionShim;
        }

        public int AgentPid { get; }
        public string Home => Path.Combine(_work.Path, "home");
        public ProxyBenchmark.PeerProcess NginxProxy { get; }
        public int CutoverTlsPort { get; }
        public int NginxTlsPort { get; }
        /// <summary>The TlsFloorServer process (this benchmark's own dll) and its port.</summary>
        public Process Floor { get; }
        public int FloorPort { get; }
        /// <summary>The same floor on Proxy/OpenSsl (`tls-openssl-floor-serve`) and its port.</summary>
        public Process OpenSslFloor { get; }
        public int OpenSslFloorPort { get; }
        /// <summary>The compiled <see cref="NoResumptionShimSource"/>, for wrk's LD_PRELOAD.</summary>
        public string NoResumptionShim { get; }

        public static async Task<Paths> StartAsync()
        {
            var work = new ProxyBenchmark.TempWork();
            var (certFile, keyFile) = MakeCertificate(work.Path);
            var shimSource = Path.Combine(work.Path, "no-resumption.c");
            var shim = Path.Combine(work.Path, "no-resumption.so");
            File.WriteAllText(shimSource, NoResumptionShimSource);
            Measure.Capture("cc", "-O2", "-shared", "-fPIC", "-o", shim, shimSource);

            var body = new string('x', 1023);
            // The instance: nginx answering 1 KiB (1023 bytes and a newline) on the port the agent gives it ($PORT).
            var cutoverPort = Cutover.Platform.LoopbackPort.Free();
            var cutoverTlsPort = Cutover.Platform.LoopbackPort.Free();
            var (backendPort, _, agentPid) = ProxyBenchmark.DeployNginxBackend(work.Path, "tlsbench", $"default_type text/plain; return 200 \"{body}\\n\";",
                $"  listen: 127.0.0.1:{cutoverPort}\n  tls:\n    listen: 127.0.0.1:{cutoverTlsPort}\n    cert: {certFile}\n    key: {keyFile}\n");

            var nginxTlsPort = Cutover.Platform.LoopbackPort.Free();
            // nginx 1.22's default ssl_protocols stop at TLSv1.2; Kestrel offers 1.2 and 1.3, so nginx is given the same.
            var nginxProxy = ProxyBenchmark.StartNginx(work.Path, "proxy", $$"""
                upstream backend { server 127.0.0.1:{{backendPort}}; keepalive 64; }
                server { listen 127.0.0.1:{{nginxTlsPort}} ssl; keepalive_requests 1000000;
                  ssl_certificate {{certFile}}; ssl_certificate_key {{keyFile}}; ssl_protocols TLSv1.2 TLSv1.3;
                  location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; } }
                """, workers: "auto");
            var floorPort = Cutover.Platform.LoopbackPort.Free();
            var floorProcess = StartFloor("tls-floor-serve", floorPort);
            var openSslFloorPort = Cutover.Platform.LoopbackPort.Free();
            var openSslFloorProcess = StartFloor("tls-openssl-floor-serve", openSslFloorPort);
            await Task.Delay(500);
            return new Paths(work, agentPid, nginxProxy, cutoverTlsPort, nginxTlsPort, shim, floorProcess, floorPort, openSslFloorProcess, openSslFloorPort);

            Process StartFloor(string command, int port)
            {
                var floor = new ProcessStartInfo("dotnet", [typeof(TlsFloorServer).Assembly.Location, command, port.ToString(CultureInfo.InvariantCulture), certFile, keyFile, backendPort.ToString(CultureInfo.InvariantCulture)])
                { RedirectStandardOutput = true, UseShellExecute = false };
                // The agent's runtimeconfig setting (src/Cutover/Cutover.csproj), so the floor's thread pool behaves as the agent's.
                floor.Environment["DOTNET_ThreadPool_UnfairSemaphoreSpinLimit"] = "0";
                var process = Process.Start(floor)!;
                process.StandardOutput.ReadLine();
                return process;
            }
        }

        /// <summary>The one certificate both proxies serve: self-signed ECDSA P-256 for localhost and 127.0.0.1, PEM files.</summary>
        private static (string Cert, string Key) MakeCertificate(string dir)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName("localhost");
            names.AddIpAddress(IPAddress.Loopback);
            request.CertificateExtensions.Add(names.Build());
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
            var certFile = Path.Combine(dir, "bench.crt.pem");
            var keyFile = Path.Combine(dir, "bench.key.pem");
            File.WriteAllText(certFile, certificate.ExportCertificatePem() + "\n");
            File.WriteAllText(keyFile, key.ExportPkcs8PrivateKeyPem() + "\n");
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            return (certFile, keyFile);
        }

        public ValueTask DisposeAsync()
        {
            // SIGTERM: the agent drains and stops the instance (the backend) and exits, as it does for a person.
            Measure.Capture("kill", "-TERM", AgentPid.ToString(CultureInfo.InvariantCulture));
            for (var i = 0; i < 300 && Directory.Exists($"/proc/{AgentPid}"); i++) Thread.Sleep(100);
            NginxProxy.Dispose();
            foreach (var floor in new[] { Floor, OpenSslFloor })
            {
                if (!floor.HasExited) floor.Kill();
                floor.WaitForExit();
                floor.Dispose();
            }
            _work.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
