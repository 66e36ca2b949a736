using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Rolling;

/// <summary>
/// Cutover's proxy as the front door, through the real CLI, a real agent and the Node example app: forwarded headers
/// by trusted_proxies, many apps on one address routed by Host and path prefix, HTTPS from certificate files (SNI,
/// HTTP/2, reload under load), and the limits (413, 431, 504).
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Slow)]
public class FrontDoorTests(ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _bed = new();

    public void Dispose() => _bed.Dispose();

    /// <summary>A rolling Node app with <paramref name="proxy"/> as extra lines of its proxy section.</summary>
    private string Config(string app, int port, params string[] proxy)
    {
        var path = _bed.Combine($"{app}.yml");
        var lines = new List<string>
        {
            $"app: {app}", "strategy: rolling", $"root: {_bed.Combine("root-" + app)}",
            "run:", "  command: node server.js", "  instances: 2", "  ready: message", "  ready_timeout: 5s",
            "proxy:", $"  listen: 127.0.0.1:{port}", "  drain_timeout: 5s",
        };
        lines.AddRange(proxy.Select(l => "  " + l));
        lines.AddRange(["health:", "  interval: 200ms", "rolling:", "  monitor: 200ms"]);
        File.WriteAllText(path, string.Join('\n', lines) + "\n");
        return path;
    }

    private async Task Deploy(string config, string version)
    {
        _bed.WriteVersion(version);
        var result = await _bed.Cli("deploy", _bed.Source, "-c", config);
        output.WriteLine(result.All);
        Assert.True(result.ExitCode == 0, result.All);
    }

    /// <summary>
    /// A client that connects to 127.0.0.1 on the URL's port whatever host the URL names (so the URL's host is the
    /// Host header and the SNI name), from <paramref name="from"/> when given, accepting any certificate and telling
    /// <paramref name="seen"/> which one it got.
    /// </summary>
    private static HttpClient Client(IPAddress? from = null, Action<X509Certificate2>? seen = null, TimeSpan? connectionLifetime = null) =>
        new(Handler(from, seen, connectionLifetime)) { Timeout = TimeSpan.FromSeconds(15) };

    private static SocketsHttpHandler Handler(IPAddress? from = null, Action<X509Certificate2>? seen = null, TimeSpan? connectionLifetime = null) =>
        new()
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            PooledConnectionLifetime = connectionLifetime ?? Timeout.InfiniteTimeSpan,
            ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    if (from is not null) socket.Bind(new IPEndPoint(from, 0));
                    await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, context.DnsEndPoint.Port), cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
            SslOptions =
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    if (certificate is not null) seen?.Invoke(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()));
                    return true;
                },
            },
        };

    private static async Task<JsonElement> Headers(HttpClient client, string url, params (string Name, string Value)[] send)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        foreach (var (name, value) in send) request.Headers.TryAddWithoutValidation(name, value);
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{(int)response.StatusCode}: {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    private static string? Header(JsonElement headers, string name) =>
        headers.TryGetProperty(name, out var value) ? value.GetString() : null;

    [Fact]
    public async Task Forwarded_headers_are_believed_only_from_trusted_proxies_and_the_host_reaches_the_app_unchanged()
    {
        var port = HealthServer.FreePort();
        await Deploy(Config("shop", port, "trusted_proxies: [127.0.0.1/32]"), "1");
        var url = $"http://shop.test:{port}/headers";
        (string, string)[] spoof = [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.test"), ("Forwarded", "for=6.6.6.6")];

        // A trusted peer (127.0.0.1, a load balancer in front): its list gets the peer appended, its proto and host pass.
        using var trusted = Client(IPAddress.Loopback);
        var fromTrusted = await Headers(trusted, url, ("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "shop.example.com"));
        Assert.Equal($"shop.test:{port}", Header(fromTrusted, "host"));
        Assert.Equal("203.0.113.7, 127.0.0.1", Header(fromTrusted, "x-forwarded-for"));
        Assert.Equal("https", Header(fromTrusted, "x-forwarded-proto"));
        Assert.Equal("shop.example.com", Header(fromTrusted, "x-forwarded-host"));

        // A trusted peer that sends nothing: the peer, plain http, the Host.
        var plainTrusted = await Headers(trusted, url);
        Assert.Equal("127.0.0.1", Header(plainTrusted, "x-forwarded-for"));
        Assert.Equal("http", Header(plainTrusted, "x-forwarded-proto"));
        Assert.Equal($"shop.test:{port}", Header(plainTrusted, "x-forwarded-host"));

        // An untrusted client (127.0.0.2) spoofing every header: replaced by what the proxy saw itself.
        using var untrusted = Client(IPAddress.Parse("127.0.0.2"));
        var fromUntrusted = await Headers(untrusted, url, spoof);
        Assert.Equal($"shop.test:{port}", Header(fromUntrusted, "host"));
        Assert.Equal("127.0.0.2", Header(fromUntrusted, "x-forwarded-for"));
        Assert.Equal("http", Header(fromUntrusted, "x-forwarded-proto"));
        Assert.Equal($"shop.test:{port}", Header(fromUntrusted, "x-forwarded-host"));
        Assert.Null(Header(fromUntrusted, "forwarded"));
    }

    [Fact]
    public async Task Two_apps_share_one_port_by_host_and_path_prefix_and_one_deploys_rolls_back_and_stops_while_the_other_serves()
    {
        var port = HealthServer.FreePort();
        var shop = Config("shop", port, "hosts: [a.test, \"*.a.test\"]");
        var api = Config("api", port, "hosts: [a.test]", "path_prefix: /api");
        await Deploy(shop, "shop1");
        await Deploy(api, "api1");

        using var client = Client();
        async Task<string> Get(string host, string path)
        {
            using var response = await client.GetAsync($"http://{host}:{port}{path}");
            return $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
        }
        Assert.StartsWith("200 hello from shop1", await Get("a.test", "/"));
        Assert.StartsWith("200 hello from shop1", await Get("A.Test", "/x"));
        Assert.StartsWith("200 hello from shop1", await Get("www.a.test", "/api"));  // the wildcard app has no /api
        Assert.StartsWith("200 hello from api1", await Get("a.test", "/api"));
        Assert.StartsWith("200 hello from api1", await Get("a.test", "/api/orders"));
        Assert.StartsWith("200 hello from shop1", await Get("a.test", "/apix"));    // segment-bounded
        Assert.StartsWith("404 no app serves host 'unknown.test'", await Get("unknown.test", "/"));
        Assert.StartsWith("404", await Get("x.y.a.test", "/"));                     // one label only

        // A third app claiming what api holds: refused, naming both, and nothing changes.
        var clash = await _bed.Cli("deploy", _bed.Source, "-c", Config("copy", port, "hosts: [a.test]", "path_prefix: /api/"));
        Assert.NotEqual(0, clash.ExitCode);
        Assert.Contains("app 'api' already claims a.test with path_prefix /api on 127.0.0.1:" + port + "; give app 'copy'", clash.Stderr);
        Assert.StartsWith("200 hello from api1", await Get("a.test", "/api"));

        await using var apiLoad = new LoadGenerator($"http://127.0.0.1:{port}/api/x", 4, TimeSpan.FromMinutes(2), host: "a.test");
        await using var shopLoad = new LoadGenerator($"http://127.0.0.1:{port}/", 4, TimeSpan.FromMinutes(2), host: "a.test");
        await Task.Delay(500);
        await Deploy(shop, "shop2");
        Assert.StartsWith("200 hello from shop2", await Get("a.test", "/"));
        var rollback = await _bed.Cli("rollback", "-c", shop);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        Assert.StartsWith("200 hello from shop1", await Get("a.test", "/"));
        var shopSamples = await shopLoad.StopAsync();
        var stop = await _bed.Cli("stop", "-c", shop);
        Assert.True(stop.ExitCode == 0, stop.All);
        Assert.StartsWith("503", await Get("a.test", "/"));
        await Task.Delay(300);
        var apiSamples = await apiLoad.StopAsync();

        output.WriteLine($"api: {apiSamples.Count} requests, shop: {shopSamples.Count} requests");
        Assert.True(apiSamples.Count > 100, $"only {apiSamples.Count} requests to api");
        Assert.DoesNotContain(apiSamples, s => s.Status != 200 || s.Version != "api1");
        Assert.DoesNotContain(shopSamples, s => s.Status != 200);
        Assert.Contains(shopSamples, s => s.Version == "shop2");
        Assert.StartsWith("200 hello from api1", await Get("a.test", "/api"));

        // A restarted agent puts both apps back on the one address.
        Assert.Equal(0, (await _bed.Cli("start", "-c", shop)).ExitCode);
        AgentProcess.Stop(_bed.Home, 15);
        using var agent = _bed.Start(_ => { }, "agent"); // not to output: the agent may still print after the test ends
        async Task<bool> Answers(string path, string body)
        {
            try { return (await Get("a.test", path)).StartsWith(body, StringComparison.Ordinal); }
            catch (HttpRequestException) { return false; }
        }
        await Wait.UntilAsync(async () => await Answers("/api", "200 hello from api1") && await Answers("/", "200 hello from shop1"), TimeSpan.FromSeconds(30), "both apps served after the agent restart");
    }

    [Fact]
    public async Task A_deploy_that_adds_tls_or_moves_an_app_to_another_port_takes_effect_without_touching_the_app_beside_it()
    {
        var port = HealthServer.FreePort();
        var (cert, key) = (_bed.Combine("a.pem"), _bed.Combine("a.key"));
        PemCertificate.Write(cert, key, "a.test", "a.test");
        await Deploy(Config("shop", port, "hosts: [a.test]"), "shop1");
        await Deploy(Config("api", port, "hosts: [b.test]"), "api1");
        await using var apiLoad = new LoadGenerator($"http://127.0.0.1:{port}/", 4, TimeSpan.FromMinutes(2), host: "b.test");
        await Task.Delay(300);

        var tlsPort = HealthServer.FreePort();
        await Deploy(Config("shop", port, "hosts: [a.test]", "tls:", $"  listen: 127.0.0.1:{tlsPort}", $"  cert: {cert}", $"  key: {key}"), "shop2");
        using var client = Client();
        Assert.StartsWith("hello from shop2", await client.GetStringAsync($"https://a.test:{tlsPort}/"));
        using (var response = await client.GetAsync($"http://a.test:{port}/"))
            Assert.Equal(HttpStatusCode.MovedPermanently, response.StatusCode);

        var otherPort = HealthServer.FreePort();
        await Deploy(Config("shop", otherPort, "hosts: [a.test]"), "shop3");
        Assert.StartsWith("hello from shop3", await client.GetStringAsync($"http://a.test:{otherPort}/"));
        using (var response = await client.GetAsync($"http://a.test:{port}/"))
            Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);  // the shared port stays, for api only
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync($"https://a.test:{tlsPort}/")); // nobody uses it: stopped

        var samples = await apiLoad.StopAsync();
        output.WriteLine($"api: {samples.Count} requests");
        Assert.True(samples.Count > 100, $"only {samples.Count} requests to api");
        Assert.DoesNotContain(samples, s => s.Status != 200 || s.Version != "api1");
    }

    [Fact]
    public async Task Https_picks_the_certificate_by_sni_speaks_http2_redirects_plain_http_and_reloads_a_replaced_certificate_under_load()
    {
        var port = HealthServer.FreePort();
        var tlsPort = HealthServer.FreePort();
        string Cert(string name) => _bed.Combine(name + ".pem");
        string Key(string name) => _bed.Combine(name + ".key");
        var shopThumbprint = PemCertificate.Write(Cert("a"), Key("a"), "a.test", "a.test");
        var blogThumbprint = PemCertificate.Write(Cert("b"), Key("b"), "b.test", "b.test");
        await Deploy(Config("shop", port, "hosts: [a.test]", "trusted_proxies: [127.0.0.1/32]",
            "tls:", $"  listen: 127.0.0.1:{tlsPort}", $"  cert: {Cert("a")}", $"  key: {Key("a")}", "  hsts: true"), "shop1");
        await Deploy(Config("blog", port, "hosts: [b.test]",
            "tls:", $"  listen: 127.0.0.1:{tlsPort}", $"  cert: {Cert("b")}", $"  key: {Key("b")}", "  redirect_http: false"), "blog1");

        var seen = new ConcurrentQueue<string>();
        using var client = Client(seen: c => seen.Enqueue(c.Thumbprint));
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"https://a.test:{tlsPort}/") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact })
        using (var response = await client.SendAsync(request))
        {
            Assert.Equal(HttpVersion.Version20, response.Version);
            Assert.StartsWith("hello from shop1", await response.Content.ReadAsStringAsync());
            Assert.Equal("max-age=31536000", response.Headers.GetValues("Strict-Transport-Security").Single());
            Assert.Equal(shopThumbprint, seen.Last());
        }
        using (var response = await client.GetAsync($"https://b.test:{tlsPort}/"))
        {
            Assert.StartsWith("hello from blog1", await response.Content.ReadAsStringAsync());
            Assert.False(response.Headers.Contains("Strict-Transport-Security"));
            Assert.Equal(blogThumbprint, seen.Last());
        }
        var overTls = await Headers(client, $"https://a.test:{tlsPort}/headers");
        Assert.Equal("https", Header(overTls, "x-forwarded-proto"));
        Assert.Equal($"a.test:{tlsPort}", Header(overTls, "host"));

        // Plain HTTP end to end is redirected; a trusted proxy's https is served (a TLS load balancer in front never loops).
        using var untrusted = Client(IPAddress.Parse("127.0.0.2"));
        using (var request = new HttpRequestMessage(HttpMethod.Get, $"http://a.test:{port}/x?y=1"))
        {
            request.Headers.Add("X-Forwarded-Proto", "https");
            using var response = await untrusted.SendAsync(request);
            Assert.Equal(HttpStatusCode.MovedPermanently, response.StatusCode);
            Assert.Equal($"https://a.test:{tlsPort}/x?y=1", response.Headers.Location!.ToString());
        }
        using var trusted = Client(IPAddress.Loopback);
        Assert.Equal("https", Header(await Headers(trusted, $"http://a.test:{port}/headers", ("X-Forwarded-Proto", "https")), "x-forwarded-proto"));
        using (var response = await trusted.GetAsync($"http://b.test:{port}/"))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode); // blog: redirect_http false

        // Under load on new connections: a broken file keeps the old certificate, a good new one is taken without a failure.
        var thumbprints = new ConcurrentDictionary<string, int>();
        using var churning = Client(seen: c => thumbprints.AddOrUpdate(c.Thumbprint, 1, (_, n) => n + 1), connectionLifetime: TimeSpan.FromMilliseconds(50));
        var failures = new ConcurrentQueue<string>();
        var requests = 0;
        using var stopLoad = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var workers = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            while (!stopLoad.IsCancellationRequested)
            {
                try
                {
                    using var response = await churning.GetAsync($"https://a.test:{tlsPort}/");
                    var body = await response.Content.ReadAsStringAsync();
                    if (response.StatusCode != HttpStatusCode.OK) failures.Enqueue($"{(int)response.StatusCode} {body}");
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or IOException)
                {
                    failures.Enqueue(e.Message);
                }
                Interlocked.Increment(ref requests);
            }
        })).ToArray();
        await Task.Delay(1000);
        File.WriteAllText(Cert("a"), "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
        await Task.Delay(2500);
        Assert.Equal([shopThumbprint], thumbprints.Keys.ToArray());
        var renewed = PemCertificate.Write(Cert("a"), Key("a"), "a.test renewed", "a.test");
        for (var i = 0; i < 100 && !thumbprints.ContainsKey(renewed); i++) await Task.Delay(100);
        await Task.Delay(500);
        stopLoad.Cancel();
        await Task.WhenAll(workers);
        output.WriteLine($"{requests} requests, certificates seen: {string.Join(", ", thumbprints.Select(t => $"{t.Key}: {t.Value}"))}");
        Assert.Empty(failures);
        Assert.True(thumbprints.ContainsKey(renewed), "the replaced certificate was never served");
        Assert.True(thumbprints[shopThumbprint] > 10, "too few handshakes before the replacement");

        // The agent's own socket settings (bench/README.md, TLS termination): one socket thread per core, and
        // none of its socket variables in the environment of the instances it started.
        var agentPid = int.Parse(File.ReadAllText(Path.Combine(_bed.Home, "agent.pid")));
        var socketThreads = Directory.GetDirectories($"/proc/{agentPid}/task").Count(t => File.ReadAllText(Path.Combine(t, "comm")).StartsWith(".NET Sockets", StringComparison.Ordinal));
        Assert.Equal(Environment.ProcessorCount, socketThreads);
        var instances = InstanceEnvironments($"{Cutover.Supervisor.InstanceProcess.AgentHomeVariable}={_bed.Home}", "CUTOVER_APP=shop");
        Assert.NotEmpty(instances);
        Assert.All(instances, env => Assert.DoesNotContain(env, variable => variable.StartsWith("DOTNET_SYSTEM_NET_SOCKETS_", StringComparison.Ordinal)));
    }

    /// <summary>The environments (NAME=value each) of the processes whose environment holds all of <paramref name="pairs"/>.</summary>
    private static List<string[]> InstanceEnvironments(params string[] pairs)
    {
        var found = new List<string[]>();
        foreach (var dir in Directory.GetDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            string[] env;
            try
            {
                env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                continue; // gone, or not ours
            }
            if (pairs.All(env.Contains)) found.Add(env);
        }
        return found;
    }

    [Fact]
    public async Task A_websocket_through_tls_and_host_routing_stays_open_across_a_deploy_until_drain_timeout()
    {
        var port = HealthServer.FreePort();
        var tlsPort = HealthServer.FreePort();
        var (cert, key) = (_bed.Combine("a.pem"), _bed.Combine("a.key"));
        PemCertificate.Write(cert, key, "a.test", "a.test");
        var config = Config("shop", port, "hosts: [a.test]", "tls:", $"  listen: 127.0.0.1:{tlsPort}", $"  cert: {cert}", $"  key: {key}");
        await Deploy(config, "1");

        using var invoker = new HttpMessageInvoker(Handler());
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        await socket.ConnectAsync(new Uri($"wss://a.test:{tlsPort}/socket"), invoker, CancellationToken.None);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var receive = Task.Run(async () =>
        {
            try { await socket.ReceiveAsync(new byte[16], CancellationToken.None); } catch (System.Net.WebSockets.WebSocketException) { }
            return clock.Elapsed;
        });
        await Deploy(config, "2"); // drain_timeout: 5s
        var closedAfter = await receive.WaitAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"websocket closed {closedAfter.TotalSeconds:0.00}s after the deploy began");
        Assert.True(closedAfter >= TimeSpan.FromSeconds(5), $"closed after {closedAfter.TotalSeconds:0.00}s, before drain_timeout");
        Assert.True(closedAfter < TimeSpan.FromSeconds(15), $"still open {closedAfter.TotalSeconds:0.00}s after the deploy began");
    }

    [Fact]
    public async Task Limits_answer_413_431_and_504_cleanly_and_status_counts_them()
    {
        var port = HealthServer.FreePort();
        var config = Config("shop", port, "max_request_body: 1K", "max_request_headers: 2K", "response_timeout: 1s");
        await Deploy(config, "1");
        using var client = Client();
        var url = $"http://127.0.0.1:{port}/";

        using (var response = await client.PostAsync(url, new ByteArrayContent(new byte[2000])))
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        using (var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StreamContent(new MemoryStream(new byte[4000])) })
        {
            request.Headers.TransferEncodingChunked = true;
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        }
        using (var response = await client.PostAsync(url, new ByteArrayContent(new byte[500])))
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);

        using (var request = new HttpRequestMessage(HttpMethod.Get, url))
        {
            request.Headers.Add("X-Big", new string('x', 3000));
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        using (var response = await client.GetAsync($"{url}slow"))
        {
            Assert.Equal(HttpStatusCode.GatewayTimeout, response.StatusCode);
            Assert.Contains("did not answer within 1s", await response.Content.ReadAsStringAsync());
        }
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(4), $"504 after {clock.Elapsed}");
        using (var response = await client.GetAsync(url))
            Assert.StartsWith("hello from 1", await response.Content.ReadAsStringAsync());

        var status = await _bed.Cli("status", "--json", "-c", config);
        output.WriteLine(status.Stdout);
        var counters = JsonDocument.Parse(status.Stdout).RootElement.GetProperty("agent").GetProperty("proxy_counters");
        Assert.Equal(2, counters.GetProperty("body_too_large").GetInt64());
        Assert.Equal(1, counters.GetProperty("headers_too_large").GetInt64());
        Assert.Equal(1, counters.GetProperty("timed_out").GetInt64());
        var text = await _bed.Cli("status", "-c", config);
        Assert.Contains("2 body too large (413), 1 headers too large (431), 1 timed out (504)", text.Stdout);
    }
}
