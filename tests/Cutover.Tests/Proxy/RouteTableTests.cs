using Cutover.Config;
using Cutover.Proxy;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Proxy;

/// <summary>Route lookup as kamal-proxy's service map: exact host, one-label wildcard, catch-all; longest segment-bounded prefix.</summary>
public class RouteTableTests : IAsyncLifetime
{
    private readonly ProxyListeners _listeners = new(NullLoggerFactory.Instance);
    private readonly List<ProxyServer> _apps = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var app in _apps) await app.DisposeAsync();
        await _listeners.DisposeAsync();
    }

    /// <summary>An app routed on a listener of its own (port 0), only for its identity in the table.</summary>
    private async Task<ProxyServer> App(string name)
    {
        var app = await ProxyServer.StartAsync(name, new ProxyConfig { Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0) }, _listeners, NullLoggerFactory.Instance, CancellationToken.None);
        _apps.Add(app);
        return app;
    }

    [Fact]
    public async Task Exact_host_then_wildcard_then_catch_all_and_the_longest_segment_bounded_prefix()
    {
        var (shop, api, wild, fallback, admin) = (await App("shop"), await App("api"), await App("wild"), await App("fallback"), await App("admin"));
        var table = RouteTable.Empty
            .With(shop, RouteTable.RoutesOf(shop, ["a.test"], "/"))
            .With(api, RouteTable.RoutesOf(api, ["a.test"], "/api"))
            .With(wild, RouteTable.RoutesOf(wild, ["*.a.test"], "/"))
            .With(fallback, RouteTable.RoutesOf(fallback, [], "/"))
            .With(admin, RouteTable.RoutesOf(admin, [], "/admin"));

        Assert.Equal(shop, table.Match("a.test", "/")?.App);
        Assert.Equal(api, table.Match("a.test", "/api")?.App);
        Assert.Equal(api, table.Match("a.test", "/api/orders/1")?.App);
        Assert.Equal(shop, table.Match("a.test", "/apis")?.App);
        Assert.Equal(wild, table.Match("www.a.test", "/api")?.App);
        Assert.Equal(fallback, table.Match("x.www.a.test", "/")?.App);
        Assert.Equal(fallback, table.Match("other.test", "/")?.App);
        Assert.Equal(admin, table.Match("other.test", "/admin/users")?.App);
        // a host whose routes match no path falls through: a.test has /api and /, so nothing falls to admin
        Assert.Equal(shop, table.Match("a.test", "/admin")?.App);

        var withoutFallback = table.Without(fallback).Without(admin);
        Assert.Null(withoutFallback.Match("other.test", "/"));
        Assert.Equal(shop, withoutFallback.Match("a.test", "/")?.App);
        // SNI: the apps that could serve a name, the most specific kind first
        Assert.Equal([wild], withoutFallback.ForHost("www.a.test").Select(r => r.App));
        Assert.Equal([api, shop], table.ForHost("a.test").Take(2).Select(r => r.App));
        Assert.Equal([admin, fallback], table.ForHost(null).Select(r => r.App));
    }

    [Fact]
    public async Task The_same_host_and_prefix_for_two_apps_is_a_conflict_naming_the_holder()
    {
        var (shop, other) = (await App("shop"), await App("other"));
        var table = RouteTable.Empty.With(shop, RouteTable.RoutesOf(shop, ["a.test", "b.test"], "/"));
        Assert.Null(table.Conflict(RouteTable.RoutesOf(other, ["a.test"], "/api")));
        Assert.Null(table.Conflict(RouteTable.RoutesOf(other, ["*.a.test"], "/")));
        Assert.Null(table.Conflict(RouteTable.RoutesOf(shop, ["b.test"], "/"))); // an app re-registering its own routes
        var (existing, claimed) = table.Conflict(RouteTable.RoutesOf(other, ["c.test", "b.test"], "/"))!.Value;
        Assert.Equal(shop, existing.App);
        Assert.Equal("b.test", claimed.Host);
    }

    [Fact]
    public async Task Two_apps_on_one_address_plain_for_one_and_tls_for_the_other_is_refused_before_anything_changes()
    {
        var port = Cutover.Platform.LoopbackPort.Free();
        var endpoint = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port);
        var plain = await ProxyServer.StartAsync("plain", new ProxyConfig { Listen = endpoint, Hosts = ["a.test"] }, _listeners, NullLoggerFactory.Instance, CancellationToken.None);
        _apps.Add(plain);
        var dir = Directory.CreateTempSubdirectory("cutover-test-");
        try
        {
            var (cert, key) = (Path.Combine(dir.FullName, "c.pem"), Path.Combine(dir.FullName, "c.key"));
            using (var ecdsa = System.Security.Cryptography.ECDsa.Create())
            {
                var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=b.test", ecdsa, System.Security.Cryptography.HashAlgorithmName.SHA256);
                using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1));
                File.WriteAllText(cert, certificate.ExportCertificatePem());
                File.WriteAllText(key, ecdsa.ExportPkcs8PrivateKeyPem());
            }
            var tlsOnSamePort = new ProxyConfig
            {
                Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, Cutover.Platform.LoopbackPort.Free()),
                Hosts = ["b.test"],
                Tls = new TlsConfig { Listen = endpoint, CertFile = cert, KeyFile = key },
            };
            var e = await Assert.ThrowsAsync<DeployException>(() => ProxyServer.StartAsync("secure", tlsOnSamePort, _listeners, NullLoggerFactory.Instance, CancellationToken.None));
            Assert.Equal($"{endpoint} serves plain HTTP for app 'plain'; app 'secure' cannot use it for TLS (proxy.tls.listen)", e.Message);
            using var client = new HttpClient();
            using var response = await client.GetAsync($"http://{endpoint}/");
            Assert.Equal(System.Net.HttpStatusCode.NotFound, response.StatusCode); // still plain, 'plain' serves only a.test
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}
