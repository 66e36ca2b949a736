using System.Net;
using System.Net.Sockets;
using Cutover.Agent;
using Cutover.Tests.Support;

namespace Cutover.Tests.Metrics;

/// <summary>
/// The agent's Prometheus metrics through a real agent, started by a real deploy of the Node example: a known load, then
/// scrapes of /metrics (the address from CUTOVER_METRICS_LISTEN) and of agent.sock's /v1/metrics; a restart by
/// supervision; a second deploy. And the address itself: off, the flag over the variable, bad values, a port in use.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public sealed class AgentMetricsTests : IDisposable
{
    private static readonly HashSet<string> BoundedLabels = ["app", "code", "process", "state", "instance", "strategy", "outcome", "release", "revision", "host", "le"];

    private readonly int _metricsPort = HealthServer.FreePort();
    private readonly AgentBed _bed;

    public AgentMetricsTests() => _bed = new AgentBed { MetricsListen = $"127.0.0.1:{_metricsPort}" };

    public void Dispose() => _bed.Dispose();

    /// <summary>A self-signed certificate for shop.test as PEM files; its expiry, to the second.</summary>
    private DateTimeOffset WriteCertificate()
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=shop.test", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        var notAfter = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.AddDays(3).ToUnixTimeSeconds());
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), notAfter);
        File.WriteAllText(_bed.Combine("shop.key"), key.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(_bed.Combine("shop.crt"), certificate.ExportCertificatePem());
        return notAfter;
    }

    private string WriteConfig(int port)
    {
        var path = _bed.Combine("cutover.yml");
        File.WriteAllText(path, $"""
            app: node
            strategy: rolling
            root: {_bed.Root}
            run:
              command: node server.js
              instances: 2
              ready: message
              ready_timeout: 5s
            proxy:
              listen: 127.0.0.1:{port}
              drain_timeout: 5s
              max_request_body: 100
              hosts: [shop.test]
              tls:
                listen: 127.0.0.1:{HealthServer.FreePort()}
                cert: {_bed.Combine("shop.crt")}
                key: {_bed.Combine("shop.key")}
                redirect_http: false
            health:
              interval: 200ms
            rolling:
              monitor: 200ms
            """);
        return path;
    }

    private async Task<IReadOnlyList<PrometheusSample>> ScrapeAsync()
    {
        using var http = new HttpClient();
        using var response = await http.GetAsync($"http://127.0.0.1:{_metricsPort}/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain; version=0.0.4", response.Content.Headers.ContentType!.ToString());
        return PrometheusText.Parse(await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Counts_each_response_by_code_keeps_counters_across_a_deploy_and_measures_each_instance()
    {
        var proxyPort = HealthServer.FreePort();
        var config = WriteConfig(proxyPort);
        var certificateExpiry = WriteCertificate();
        _bed.WriteVersion("1");
        var first = await _bed.Cli("deploy", _bed.Source, "-c", config);
        Assert.True(first.ExitCode == 0, first.All);
        using var agent = new AgentClient(new AgentHome(_bed.Home));
        var release1 = (await agent.AppsAsync(CancellationToken.None)).Single().Release!;

        // A known load: 30 answered by the app, 7 refused by the proxy's max_request_body (413).
        using (var http = new HttpClient { DefaultRequestHeaders = { Host = "shop.test" } })
        {
            for (var i = 0; i < 30; i++)
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{proxyPort}/items/{i}?q={i}")).StatusCode);
            for (var i = 0; i < 7; i++)
                Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await http.PostAsync($"http://127.0.0.1:{proxyPort}/upload/{i}", new ByteArrayContent(new byte[1000]))).StatusCode);
        }

        var scrape = await ScrapeAsync();
        Assert.Equal(30, scrape.Value("cutover_proxy_requests_total", ("app", "node"), ("code", "200")));
        Assert.Equal(7, scrape.Value("cutover_proxy_requests_total", ("app", "node"), ("code", "413")));
        Assert.Equal(2, scrape.Count(s => s.Name == "cutover_proxy_requests_total"));
        Assert.Equal(37, scrape.Value("cutover_proxy_request_duration_seconds_count", ("app", "node")));
        Assert.Equal(37, scrape.Value("cutover_proxy_request_duration_seconds_bucket", ("app", "node"), ("le", "+Inf")));
        Assert.Equal(0, scrape.Value("cutover_proxy_active_connections", ("app", "node")));
        Assert.Equal(0, scrape.Value("cutover_proxy_retries_total", ("app", "node")));
        Assert.Equal(1, scrape.Value("cutover_deploys_total", ("app", "node"), ("strategy", "rolling"), ("outcome", "live")));
        Assert.Equal(1, scrape.Value("cutover_release_info", ("app", "node"), ("release", release1)));
        Assert.Equal(2, scrape.Value("cutover_instances", ("app", "node"), ("process", "web"), ("state", "ready")));
        Assert.Equal(0, scrape.Value("cutover_instance_restarts_total", ("app", "node"), ("process", "web")));
        Assert.Equal(certificateExpiry.ToUnixTimeSeconds(), scrape.Value("cutover_certificate_expiry_timestamp_seconds", ("host", "shop.test")));
        // Bounded labels: no path, query or client address made it into a series.
        Assert.All(scrape.SelectMany(s => s.Labels.Keys), label => Assert.Contains(label, BoundedLabels));
        Assert.DoesNotContain(scrape.SelectMany(s => s.Labels.Values), value => value.Contains('/') || value.Contains("127.0.0.1"));

        // Memory and CPU of each instance's app process (node: tens of MB, never the few hundred KB of the sh wrapper).
        var instances = (await agent.AppsAsync(CancellationToken.None)).Single().Instances;
        Assert.Equal(2, instances.Count(i => i.Pid is not null));
        foreach (var instance in instances)
        {
            Assert.True(scrape.Value("cutover_instance_memory_bytes", ("app", "node"), ("process", "web"), ("instance", (string)instance.Id)) > 10 << 20);
            Assert.True(scrape.Value("cutover_instance_cpu_seconds_total", ("app", "node"), ("process", "web"), ("instance", (string)instance.Id)) > 0);
        }

        // The control socket's /v1/metrics is the same exposition: same series, same values (but memory and CPU, which move).
        var viaSocket = PrometheusText.Parse(await agent.MetricsAsync(CancellationToken.None));
        static IEnumerable<string> Stable(IEnumerable<PrometheusSample> samples) => samples
            .Where(s => s.Name is not ("cutover_instance_memory_bytes" or "cutover_instance_cpu_seconds_total"))
            .Select(s => $"{s.Name}{{{string.Join(",", s.Labels.OrderBy(l => l.Key).Select(l => $"{l.Key}={l.Value}"))}}} {s.Value}");
        Assert.Equal(Stable(scrape), Stable(viaSocket));

        // Supervision restarts an instance whose app process was killed: the restart is counted.
        var victim = instances.First(i => i.Pid is not null);
        var appProcess = Directory.EnumerateDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out var pid) ? pid : 0)
            .First(pid => pid != victim.Pid && Cutover.Platform.ProcStat.Read(pid)?.ProcessGroup == victim.Pid);
        Cutover.Platform.LibC.Kill(appProcess, 9);
        await Wait.UntilAsync(async () => (await ScrapeAsync()).Value("cutover_instance_restarts_total", ("app", "node"), ("process", "web")) == 1,
            TimeSpan.FromSeconds(15), "the restart counted");

        var cpuBefore = (await ScrapeAsync()).Where(x => x.Name == "cutover_instance_cpu_seconds_total").ToDictionary(x => x.Labels["instance"], x => x.Value);
        _bed.WriteVersion("2");
        var second = await _bed.Cli("deploy", _bed.Source, "-c", config);
        Assert.True(second.ExitCode == 0, second.All);
        var release2 = (await agent.AppsAsync(CancellationToken.None)).Single().Release!;
        Assert.NotEqual(release1, release2);

        var after = await ScrapeAsync();
        Assert.Equal(30, after.Value("cutover_proxy_requests_total", ("app", "node"), ("code", "200")));
        Assert.Equal(7, after.Value("cutover_proxy_requests_total", ("app", "node"), ("code", "413")));
        Assert.Equal(37, after.Value("cutover_proxy_request_duration_seconds_count", ("app", "node")));
        Assert.Equal(1, after.Value("cutover_instance_restarts_total", ("app", "node"), ("process", "web")));
        Assert.Equal(2, after.Value("cutover_deploys_total", ("app", "node"), ("strategy", "rolling"), ("outcome", "live")));
        Assert.Equal(2, after.Value("cutover_deploy_duration_seconds_count", ("app", "node")));
        Assert.Equal(1, after.Value("cutover_release_info", ("app", "node"), ("release", release2)));
        Assert.DoesNotContain(after, s => s.Name == "cutover_release_info" && s.Labels["release"] == release1);
        // Each slot is measured on its new process; its CPU counter went on rising (the new process's CPU added), never back.
        var newInstances = (await agent.AppsAsync(CancellationToken.None)).Single().Instances;
        Assert.Equal(newInstances.Select(i => i.Id).Order(), after.Where(s => s.Name == "cutover_instance_memory_bytes").Select(s => s.Labels["instance"]).Order());
        Assert.Equal(cpuBefore.Keys.Order(), newInstances.Select(i => i.Id).Order());
        foreach (var (instance, before) in cpuBefore)
            Assert.True(after.Value("cutover_instance_cpu_seconds_total", ("instance", instance)) > before, $"{instance}: CPU {before} s before the deploy");

        // An upgrade hands the metrics address to the new agent (counters start again: a reset for rate(); what runs is there).
        var oldAgent = File.ReadAllText(Path.Combine(_bed.Home, "agent.pid"));
        var upgrade = await _bed.Cli("agent", "upgrade");
        Assert.True(upgrade.ExitCode == 0, upgrade.All);
        Assert.NotEqual(oldAgent, File.ReadAllText(Path.Combine(_bed.Home, "agent.pid")));
        IReadOnlyList<PrometheusSample> upgraded = [];
        await Wait.UntilAsync(async () =>
        {
            try { upgraded = await ScrapeAsync(); }
            catch (HttpRequestException) { return false; }
            return !upgraded.Any(s => s.Name == "cutover_proxy_requests_total");
        }, TimeSpan.FromSeconds(15), "the new agent serving /metrics");
        Assert.Equal(1, upgraded.Value("cutover_release_info", ("app", "node"), ("release", release2)));
        Assert.Equal(2, upgraded.Value("cutover_instances", ("app", "node"), ("process", "web"), ("state", "ready")));

        // Socket threads (Platform/Epoll): the agent (here the one the upgrade started, which took over the listeners) found one per core, and a burst of 32 new keep-alive clients
        // meeting a cold upstream pool is served with each client's responses read on its own thread. Left to .NET's
        // round-robin, clients and the upstream connections they open take turns at the threads, and most responses cross.
        var placement = File.ReadAllLines(Path.Combine(_bed.Home, "agent.log")).Where(l => l.Contains("socket threads")).ToList();
        Assert.Equal(2, placement.Count);
        Assert.All(placement, line => Assert.EndsWith($"proxy: {Environment.ProcessorCount} socket threads, each client connection and its upstream connections on one", line));
        await Task.Delay(Cutover.Proxy.Http1.UpstreamPool.IdleTimeout + TimeSpan.FromSeconds(1.5)); // the pool empties
        const int clients = 32, requestsEach = 20;
        await Task.WhenAll(Enumerable.Range(0, clients).Select(async c =>
        {
            using var http = new HttpClient { DefaultRequestHeaders = { Host = "shop.test" } };
            for (var i = 0; i < requestsEach; i++)
                Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{proxyPort}/burst/{c}")).StatusCode);
        }));
        var crossings = (await ScrapeAsync()).Value("cutover_proxy_socket_thread_crossings_total", ("app", "node"));
        Assert.True(crossings <= clients * requestsEach / 10, $"{crossings} of {clients * requestsEach} responses crossed socket threads");
    }

    [Fact]
    public async Task Off_serves_nothing_the_flag_wins_over_the_variable_and_bad_addresses_are_refused_at_start()
    {
        // --metrics-listen off over CUTOVER_METRICS_LISTEN (the bed's): nothing on that port, /v1/metrics still answers.
        var output = new List<string>();
        using (var agentProcess = _bed.Start(line => { lock (output) output.Add(line); }, "agent", "--metrics-listen", "off"))
        {
            using var agent = new AgentClient(new AgentHome(_bed.Home));
            await Wait.UntilAsync(async () => File.Exists(Path.Combine(_bed.Home, "agent.pid")) && await agent.IsRunningAsync(CancellationToken.None),
                TimeSpan.FromSeconds(15), "the agent answering on agent.sock");
            Assert.Contains("# TYPE cutover_proxy_requests_total counter", await agent.MetricsAsync(CancellationToken.None));
            using var probe = new TcpClient();
            var refused = await Assert.ThrowsAsync<SocketException>(() => probe.ConnectAsync(IPAddress.Loopback, _metricsPort));
            Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
            AgentProcess.Stop(_bed.Home, 15);
        }
        // Stopped once: the shutdown is not run (and logged) a second time when the agent is disposed.
        Assert.Single(File.ReadAllLines(Path.Combine(_bed.Home, "agent.log")), line => line.Contains("agent stopping: draining"));

        // A bad address, from the flag or from the variable: exit 2 naming where it came from, no agent started.
        var badFlag = await _bed.Cli("agent", "--metrics-listen", "localhost:notaport");
        Assert.Equal(2, badFlag.ExitCode);
        Assert.Contains("--metrics-listen: 'localhost:notaport' is not an address", badFlag.Stderr);
        var badVariable = await CutoverCli.RunAsync(_bed.Path, new Dictionary<string, string> { ["CUTOVER_HOME"] = _bed.Home, ["CUTOVER_METRICS_LISTEN"] = "9464" }, "agent");
        Assert.Equal(2, badVariable.ExitCode);
        Assert.Contains("CUTOVER_METRICS_LISTEN: '9464' is not an address", badVariable.Stderr);

        // A port in use: the agent's start fails (exit 1) with the reason, before it serves anything.
        using var holder = new TcpListener(IPAddress.Loopback, 0);
        holder.Start();
        var held = ((IPEndPoint)holder.LocalEndpoint).Port;
        var inUse = await _bed.Cli("agent", "--metrics-listen", $"127.0.0.1:{held}");
        Assert.Equal(1, inUse.ExitCode);
        Assert.Contains($"cannot serve metrics on 127.0.0.1:{held}: the address is in use", inUse.Stderr);
        Assert.False(File.Exists(Path.Combine(_bed.Home, "agent.sock")));

        // A deploy that starts the agent with that address says why the agent did not start (not "did not start within 30 s").
        _bed.WriteVersion("1");
        var config = _bed.WriteNodeConfig(HealthServer.FreePort(), "rolling");
        var deploy = await CutoverCli.RunAsync(_bed.Path, new Dictionary<string, string> { ["CUTOVER_HOME"] = _bed.Home, ["CUTOVER_METRICS_LISTEN"] = $"127.0.0.1:{held}" },
            "deploy", _bed.Source, "-c", config);
        Assert.Equal(1, deploy.ExitCode);
        Assert.Contains($"the agent did not start: cannot serve metrics on 127.0.0.1:{held}: the address is in use", deploy.All);
    }
}
