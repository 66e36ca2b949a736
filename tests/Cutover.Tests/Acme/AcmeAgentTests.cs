using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Acme;

/// <summary>
/// proxy.tls.acme end to end: the real CLI deploys the Node example to a real agent, which obtains the certificate
/// from a real pebble whose http-01 validation dials the agent's own plain listener (proxy.listen), then serves it by
/// SNI on proxy.tls.listen.
/// </summary>
[Collection(Serial.Name)]
[Trait(Needs.Trait, Needs.Pebble)]
public sealed class AcmeAgentTests(ITestOutputHelper output) : IDisposable
{
    private static readonly string[] Hosts = ["app.cutover.test", "www.cutover.test"];
    private readonly AgentBed _bed = new();

    public void Dispose() => _bed.Dispose();

    private string Config(int port, string? tls = null, IReadOnlyList<string>? hosts = null)
    {
        var extra = tls is null ? "" : $"  hosts: [{string.Join(", ", hosts ?? Hosts)}]\n" + tls;
        return _bed.WriteNodeConfig(port, "rolling", extra + "health:\n  interval: 200ms\nrolling:\n  monitor: 200ms\n");
    }

    private static string Acme(int tlsPort, Uri directory, string caCert) =>
        $"  tls:\n    listen: 127.0.0.1:{tlsPort}\n    acme:\n      email: ops@cutover.test\n      directory: {directory}\n      ca_cert: {caCert}\n";

    private async Task<CliResult> Deploy(string config, string version)
    {
        _bed.WriteVersion(version);
        var result = await _bed.Cli("deploy", _bed.Source, "-c", config);
        output.WriteLine(result.All);
        return result;
    }

    /// <summary>A TLS handshake with <paramref name="serverName"/> as SNI, trusting only <paramref name="root"/>: the chain must be complete as sent.</summary>
    private static async Task<X509Certificate2> HandshakeAsync(int port, string serverName, X509Certificate2 root)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        await using var tls = new SslStream(client.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            CertificateChainPolicy = TrustOnly.Root(root),
        });
        return X509CertificateLoader.LoadCertificate(tls.RemoteCertificate!.GetRawCertData());
    }

    /// <summary>HTTPS to 127.0.0.1:<paramref name="port"/> whatever the URL's host (so it is the SNI and Host), trusting only pebble's root.</summary>
    private static HttpClient TrustingClient(int port, X509Certificate2 root) => new(new SocketsHttpHandler
    {
        UseProxy = false,
        ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
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
            CertificateChainPolicy = TrustOnly.Root(root),
        },
    }) { Timeout = TimeSpan.FromSeconds(15) };

    private static IReadOnlyList<string> SansOf(X509Certificate2 certificate) => certificate.Extensions
        .OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => e.EnumerateDnsNames()).Order(StringComparer.Ordinal).ToList();

    private int CertificatesObtained() =>
        File.ReadAllLines(Path.Combine(_bed.Home, "agent.log")).Count(l => l.Contains("obtained, valid until"));

    [Fact]
    public async Task A_first_deploy_obtains_the_certificate_from_pebble_before_https_serves_it_by_sni_and_a_restarted_agent_serves_it_without_a_new_order()
    {
        var port = HealthServer.FreePort();
        var tlsPort = HealthServer.FreePort();
        // Pebble's VA validates http-01 on the agent's plain listener: nothing else answers the challenges.
        await using var pebble = await PebbleServer.StartAsync(httpPort: port);
        using var root = await pebble.RootAsync();
        using var intermediate = await pebble.IntermediateAsync();
        var config = Config(port, Acme(tlsPort, pebble.Directory, pebble.CaCertPath));

        var deploy = await Deploy(config, "1");
        Assert.True(deploy.ExitCode == 0, deploy.All);
        Assert.Contains("certificate for app.cutover.test, www.cutover.test", deploy.All);

        // Served by SNI, chained to pebble's root through the intermediate the proxy sends, for exactly proxy.hosts.
        var served = await HandshakeAsync(tlsPort, "www.cutover.test", root);
        Assert.Equal(intermediate.SubjectName.Name, served.IssuerName.Name);
        Assert.Equal(Hosts, SansOf(served));
        using (var https = TrustingClient(tlsPort, root))
        {
            using var response = await https.GetAsync($"https://app.cutover.test:{tlsPort}/");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.StartsWith("hello from 1", await response.Content.ReadAsStringAsync());
        }

        // Account key and certificate live under CUTOVER_HOME/certs, readable by the owner only.
        var files = Directory.GetFiles(Path.Combine(_bed.Home, "certs"), "*", SearchOption.AllDirectories);
        Assert.Equal(2, files.Length);
        Assert.Contains(files, f => Path.GetFileName(f) == "account.pem");
        Assert.All(files, f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));

        var status = await _bed.Cli("status", "-c", config);
        Assert.True(status.ExitCode == 0, status.All);
        Assert.Contains($"certificate app.cutover.test, www.cutover.test: valid until {served.NotAfter.ToUniversalTime():yyyy-MM-dd HH:mm:ss}Z", status.Stdout);
        var json = JsonDocument.Parse((await _bed.Cli("status", "--json", "-c", config)).Stdout).RootElement.GetProperty("agent").GetProperty("certificate");
        Assert.Equal(Hosts, json.GetProperty("names").EnumerateArray().Select(n => n.GetString()).ToList());
        Assert.Equal(new DateTimeOffset(served.NotAfter.ToUniversalTime()), json.GetProperty("not_after").GetDateTimeOffset());
        Assert.True(json.GetProperty("renew_at").GetDateTimeOffset() < json.GetProperty("not_after").GetDateTimeOffset());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("last_error").ValueKind);
        Assert.Equal(1, CertificatesObtained());

        // A new name while the app is routed with redirect_http on: the plain listener answers pebble's validation for
        // it before any routing or redirect, and the new certificate is in place when the deploy says so.
        string[] threeHosts = ["api.cutover.test", .. Hosts];
        var renamed = await Deploy(Config(port, Acme(tlsPort, pebble.Directory, pebble.CaCertPath), threeHosts), "2");
        Assert.True(renamed.ExitCode == 0, renamed.All);
        var servedForThree = await HandshakeAsync(tlsPort, "api.cutover.test", root);
        Assert.Equal(threeHosts, SansOf(servedForThree));
        Assert.Equal(2, CertificatesObtained());

        // Restarted with the CA gone: the stored certificate is served again, so no order was needed (or possible).
        pebble.StopAcme();
        AgentProcess.Stop(_bed.Home, 15);
        using var agent = _bed.Start(output.WriteLine, "agent");
        await Wait.UntilAsync(async () =>
        {
            try
            {
                return (await HandshakeAsync(tlsPort, "app.cutover.test", root)).SerialNumber == servedForThree.SerialNumber;
            }
            // Not up yet, or up before the app's certificate is back: refused with an unrecognized_name alert
            // (AuthenticationException; before TLS on OpenSSL the connection was just closed, an IOException).
            catch (Exception e) when (e is SocketException or IOException or System.Security.Authentication.AuthenticationException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "the restarted agent to serve the stored certificate", TimeSpan.FromMilliseconds(200));
        Assert.Equal(2, CertificatesObtained());
    }

    [Fact]
    public async Task A_failed_background_renewal_is_in_status_and_the_agent_log_with_its_next_attempt_while_the_certificate_keeps_serving()
    {
        var port = HealthServer.FreePort();
        var tlsPort = HealthServer.FreePort();
        // 15 s certificates: renewal is due a third before expiry (about 10 s after the deploy obtained it), when the CA
        // will be gone. Long enough for the rest of the deploy and the handshake below on a slow machine; the wait for
        // the failure is most of this test, so not longer.
        await using var pebble = await PebbleServer.StartAsync(httpPort: port, certificateValidity: TimeSpan.FromSeconds(15));
        using var root = await pebble.RootAsync();
        var config = Config(port, Acme(tlsPort, pebble.Directory, pebble.CaCertPath));
        var deploy = await Deploy(config, "1");
        Assert.True(deploy.ExitCode == 0, deploy.All);
        var served = await HandshakeAsync(tlsPort, "app.cutover.test", root);
        pebble.StopAcme();

        JsonElement certificate = default;
        await Wait.UntilAsync(async () =>
        {
            certificate = JsonDocument.Parse((await _bed.Cli("status", "--json", "-c", config)).Stdout).RootElement.GetProperty("agent").GetProperty("certificate");
            return certificate.GetProperty("last_error").ValueKind == JsonValueKind.String;
        }, TimeSpan.FromSeconds(60), "the background renewal to fail", TimeSpan.FromMilliseconds(500));

        Assert.Equal(1, certificate.GetProperty("consecutive_failures").GetInt32());
        Assert.True(certificate.GetProperty("next_attempt_at").GetDateTimeOffset() > certificate.GetProperty("last_failure_at").GetDateTimeOffset());
        Assert.Equal(new DateTimeOffset(served.NotAfter.ToUniversalTime()), certificate.GetProperty("not_after").GetDateTimeOffset());
        var status = await _bed.Cli("status", "-c", config);
        Assert.Contains("certificate renewal failed 1 time(s)", status.Stdout);
        Assert.Contains("attempt 1 failed, next at", File.ReadAllText(Path.Combine(_bed.Home, "agent.log")));
        // The old certificate keeps serving (until it expires; any validity accepted here, the serial is what counts).
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, tlsPort);
        await using var tls = new SslStream(client.GetStream(), false, (_, _, _, _) => true);
        await tls.AuthenticateAsClientAsync("app.cutover.test");
        Assert.Equal(served.SerialNumber, X509CertificateLoader.LoadCertificate(tls.RemoteCertificate!.GetRawCertData()).SerialNumber);
    }

    [Fact]
    public async Task A_first_acme_deploy_whose_ca_cannot_be_reached_fails_before_the_switch_and_the_running_release_keeps_serving()
    {
        var port = HealthServer.FreePort();
        var tlsPort = HealthServer.FreePort();
        var plain = Config(port);
        Assert.Equal(0, (await Deploy(plain, "1")).ExitCode);
        // Nothing listens on the directory's port.
        var config = Config(port, Acme(tlsPort, new Uri($"https://127.0.0.1:{HealthServer.FreePort()}/dir"), "/etc/ssl/certs/ca-certificates.crt"));

        var deploy = await Deploy(config, "2");

        Assert.Equal(1, deploy.ExitCode);
        Assert.Contains("no certificate from https://127.0.0.1:", deploy.All);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        Assert.StartsWith("hello from 1", await http.GetStringAsync($"http://127.0.0.1:{port}/"));
        var status = JsonDocument.Parse((await _bed.Cli("status", "--json", "-c", plain)).Stdout).RootElement;
        Assert.All(status.GetProperty("agent").GetProperty("instances").EnumerateArray(), i => Assert.Equal("ready", i.GetProperty("state").GetString()));
        Assert.Equal(status.GetProperty("agent").GetProperty("release").GetString(), status.GetProperty("current").GetProperty("id").GetString());
        // Nothing listens for TLS: the app was never routed there.
        using var probe = new TcpClient();
        await Assert.ThrowsAsync<SocketException>(() => probe.ConnectAsync(IPAddress.Loopback, tlsPort));
    }
}
