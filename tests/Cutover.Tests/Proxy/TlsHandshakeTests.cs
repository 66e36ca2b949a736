using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Cutover.Config;
using Cutover.Proxy;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Tests.Proxy;

/// <summary>
/// What a new TLS connection costs the agent beyond the cryptography (issue 14 item 1, issue 18's speed goal; numbers in
/// bench/README.md, TLS termination): the handshake options are made once per certificate, not per connection, and the
/// agent's thread pool does not spin.
/// </summary>
public class TlsHandshakeTests
{
    [Fact]
    public async Task Handshakes_share_one_options_object_per_certificate_and_a_reloaded_certificate_gets_its_own()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var dir = Directory.CreateTempSubdirectory("cutover-test-");
        await using var listeners = new ProxyListeners(NullLoggerFactory.Instance);
        ProxyServer? app = null;
        try
        {
            var (certFile, keyFile) = (Path.Combine(dir.FullName, "site.pem"), Path.Combine(dir.FullName, "site.key"));
            var first = PemCertificate.Write(certFile, keyFile, "a.test", "a.test");
            var tls = new IPEndPoint(IPAddress.Loopback, 0);
            app = await ProxyServer.StartAsync("site", new ProxyConfig
            {
                Listen = new IPEndPoint(IPAddress.Loopback, 0),
                Hosts = ["a.test"],
                Tls = new TlsConfig { Listen = tls, CertFile = certFile, KeyFile = keyFile },
            }, listeners, NullLoggerFactory.Instance, timeout.Token);
            var listener = listeners.TlsListenerOf(app);

            // Real handshakes, each on a new connection: the certificate served, and one options object behind all of them.
            Assert.Equal(first, await ServedThumbprintAsync(listener.Bound, "a.test", timeout.Token));
            var options = listener.ServerOptionsFor("a.test");
            Assert.Equal(first, await ServedThumbprintAsync(listener.Bound, "A.TEST.", timeout.Token));
            Assert.Same(options, listener.ServerOptionsFor("a.test"));
            Assert.Equal(first, options!.ServerCertificateContext!.TargetCertificate.Thumbprint);
            Assert.Equal([SslApplicationProtocol.Http2, SslApplicationProtocol.Http11], options.ApplicationProtocols!);
            Assert.Null(listener.ServerOptionsFor("b.test")); // no app for it: the handshake fails, as before

            // Replaced files: the next handshake serves the new certificate, through options of its own.
            var second = PemCertificate.Write(certFile, keyFile, "a.test", "a.test");
            ((CertificateFiles)app.Certificates!).ReloadIfChanged();
            Assert.Equal(second, await ServedThumbprintAsync(listener.Bound, "a.test", timeout.Token));
            var reloaded = listener.ServerOptionsFor("a.test");
            Assert.NotSame(options, reloaded);
            Assert.Equal(second, reloaded!.ServerCertificateContext!.TargetCertificate.Thumbprint);
            Assert.Same(reloaded, listener.ServerOptionsFor("a.test"));
        }
        finally
        {
            if (app is not null) await app.DisposeAsync();
            dir.Delete(recursive: true);
        }
    }

    /// <summary>
    /// Idle thread-pool workers spin (sched_yield) before they sleep; in the agent that cost about 80 context switches
    /// and a quarter of its CPU per new TLS connection. The setting is in cutover's runtimeconfig, so every agent has it,
    /// however it is started (in the background, by systemd, by an upgrade).
    /// </summary>
    [Fact]
    public void The_cutover_runtime_config_turns_thread_pool_spinning_off()
    {
        var runtimeConfig = Path.ChangeExtension(CutoverCli.Dll, ".runtimeconfig.json");
        using var document = JsonDocument.Parse(File.ReadAllText(runtimeConfig));
        var properties = document.RootElement.GetProperty("runtimeOptions").GetProperty("configProperties");
        Assert.Equal(0, properties.GetProperty("System.Threading.ThreadPool.UnfairSemaphoreSpinLimit").GetInt32());
    }

    /// <summary>The agent picks its socket thread count unless the operator did; a count it cannot use is refused, not ignored.</summary>
    [Theory]
    [InlineData("0")]
    [InlineData("two")]
    [InlineData("-1")]
    public async Task An_agent_socket_thread_count_that_is_not_1_or_more_is_refused_before_anything_is_touched(string count)
    {
        using var dir = new TempDir();
        var home = dir.Combine("home");
        var result = await CutoverCli.RunAsync(dir.Path, new Dictionary<string, string>
        {
            ["CUTOVER_HOME"] = home,
            [Cutover.Platform.InlineSocketCompletions.ThreadCountVariable] = count,
        }, "agent");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal($"error: DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT must be a whole number of socket threads, 1 or more; got '{count}'", result.Stderr.Trim());
        Assert.False(Directory.Exists(home), "the refused agent created its home");
    }

    /// <summary>One full handshake on a new connection with <paramref name="serverName"/> as SNI; the leaf the server sent.</summary>
    private static async Task<string> ServedThumbprintAsync(IPEndPoint endpoint, string serverName, CancellationToken cancellationToken)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(endpoint, cancellationToken);
        await using var tls = new SslStream(client.GetStream());
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        }, cancellationToken);
        return tls.RemoteCertificate!.GetCertHashString();
    }
}
