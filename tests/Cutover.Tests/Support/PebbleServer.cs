using System.Diagnostics;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Cutover.Acme;

namespace Cutover.Tests.Support;

/// <summary>
/// A real ACME server: Debian's pebble, with pebble-challtestsrv as its DNS server answering every A query with
/// 127.0.0.1, so any test name validates against <see cref="PebbleChallengeServer"/>. Both on loopback ports,
/// started by pid and stopped by pid. Debian ships no API certificate, so one is made here with CertificateRequest;
/// <see cref="CaCertPath"/> is what a test gives AcmeOptions.CaCertPath. The package is installed if missing
/// (./test.sh installs it too).
/// </summary>
public sealed class PebbleServer : IAsyncDisposable
{
    private readonly TempDir _dir;
    private readonly Process _dns;
    private readonly X509Certificate2 _apiCertificate;
    private readonly Func<Process> _startPebble;
    private Process? _pebble;

    private PebbleServer(TempDir dir, Process dns, Func<Process> startPebble, X509Certificate2 apiCertificate, int apiPort, int managementPort)
    {
        _dir = dir;
        _dns = dns;
        _startPebble = startPebble;
        _pebble = startPebble();
        _apiCertificate = apiCertificate;
        ApiPort = apiPort;
        ManagementPort = managementPort;
    }

    public int ApiPort { get; }
    public int ManagementPort { get; }
    public Uri Directory => new($"https://127.0.0.1:{ApiPort}/dir");
    public string CaCertPath => _dir.Combine("api-cert.pem");
    public bool Running => _pebble is { HasExited: false };

    public AcmeOptions Options(string email = "ops@cutover.test") => new()
    {
        Directory = Directory,
        Email = email,
        CaCertPath = CaCertPath,
        PollInterval = TimeSpan.FromMilliseconds(100),
    };

    /// <param name="httpPort">The port pebble's VA dials for http-01 (the challenge server's).</param>
    /// <param name="nonceRejectPercent">PEBBLE_WFE_NONCEREJECT: the share of good nonces pebble refuses with badNonce.</param>
    /// <param name="authzReusePercent">PEBBLE_AUTHZREUSE: how often a new order reuses a valid authorization (then starts `ready`).</param>
    /// <param name="certificateValidity">How long the certificates pebble issues are valid (whole seconds); null for pebble's default of years.</param>
    public static async Task<PebbleServer> StartAsync(int httpPort, int nonceRejectPercent = 0, int authzReusePercent = 0, TimeSpan? certificateValidity = null)
    {
        await EnsureInstalledAsync();
        var dir = new TempDir("cutover-pebble-");
        try
        {
            var apiCertificate = WriteApiCertificate(dir);
            var apiPort = HealthServer.FreePort();
            var managementPort = HealthServer.FreePort();
            var dnsPort = HealthServer.FreePort();
            var config = new JsonObject
            {
                ["pebble"] = new JsonObject
                {
                    ["listenAddress"] = $"127.0.0.1:{apiPort}",
                    ["managementListenAddress"] = $"127.0.0.1:{managementPort}",
                    ["certificate"] = dir.Combine("api-cert.pem"),
                    ["privateKey"] = dir.Combine("api-key.pem"),
                    ["httpPort"] = httpPort,
                    ["tlsPort"] = HealthServer.FreePort(),
                    ["ocspResponderURL"] = "",
                    ["externalAccountBindingRequired"] = false,
                },
            };
            if (certificateValidity is { } validity) config["pebble"]!["certificateValidityPeriod"] = (ulong)validity.TotalSeconds;
            File.WriteAllText(dir.Combine("pebble.json"), config.ToJsonString());

            // Its own challenge servers off (the test's answers http-01), its DNS on a loopback port, A -> 127.0.0.1, no AAAA.
            var dns = Start(dir, "pebble-challtestsrv", ["-dns01", $"127.0.0.1:{dnsPort}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                "-management", $"127.0.0.1:{HealthServer.FreePort()}", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""], new());
            Process StartPebble() => Start(dir, "pebble", ["-config", dir.Combine("pebble.json"), "-dnsserver", $"127.0.0.1:{dnsPort}"], new()
            {
                ["PEBBLE_VA_NOSLEEP"] = "1",
                ["PEBBLE_WFE_NONCEREJECT"] = nonceRejectPercent.ToString(),
                ["PEBBLE_AUTHZREUSE"] = authzReusePercent.ToString(),
            });
            var server = new PebbleServer(dir, dns, StartPebble, apiCertificate, apiPort, managementPort);
            await server.WaitReadyAsync();
            return server;
        }
        catch
        {
            dir.Dispose();
            throw;
        }
    }

    /// <summary>Pebble's root for this launch (regenerated each start), from the management interface.</summary>
    public Task<X509Certificate2> RootAsync() => ManagementCertificateAsync("/roots/0");

    public Task<X509Certificate2> IntermediateAsync() => ManagementCertificateAsync("/intermediates/0");

    /// <summary>Stops pebble (the CA goes away), leaving its DNS server: what a failed renewal meets.</summary>
    public void StopAcme()
    {
        if (_pebble is null) return;
        Stop(_pebble);
        _pebble.Dispose();
        _pebble = null;
    }

    /// <summary>Starts pebble again on the same ports: a new CA that knows no account, as after a CA's outage and reset.</summary>
    public async Task StartAcmeAgainAsync()
    {
        if (Running) throw new InvalidOperationException("pebble is running");
        _pebble = _startPebble();
        await WaitReadyAsync();
    }

    public async ValueTask DisposeAsync()
    {
        StopAcme();
        Stop(_dns);
        _dns.Dispose();
        _apiCertificate.Dispose();
        await Task.Yield();
        _dir.Dispose();
    }

    private HttpClient TrustingClient() => new(new SocketsHttpHandler
    {
        SslOptions =
        {
            CertificateChainPolicy = TrustOnly.Root(_apiCertificate),
        },
    }) { Timeout = TimeSpan.FromSeconds(10) };

    private async Task<X509Certificate2> ManagementCertificateAsync(string path)
    {
        using var client = TrustingClient();
        var pem = await client.GetStringAsync($"https://127.0.0.1:{ManagementPort}{path}");
        return X509Certificate2.CreateFromPem(pem);
    }

    private async Task WaitReadyAsync()
    {
        using var client = TrustingClient();
        await Wait.UntilAsync(async () =>
        {
            if (!Running) throw new InvalidOperationException($"pebble exited ({_pebble?.ExitCode}): {LogOf("pebble")}");
            if (_dns.HasExited) throw new InvalidOperationException($"pebble-challtestsrv exited ({_dns.ExitCode}): {LogOf("pebble-challtestsrv")}");
            try
            {
                using var response = await client.GetAsync(Directory);
                return response.StatusCode == HttpStatusCode.OK;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(30), $"pebble to answer {Directory}", TimeSpan.FromMilliseconds(100));
    }

    private string LogOf(string program) => File.Exists(_dir.Combine(program + ".log")) ? File.ReadAllText(_dir.Combine(program + ".log")) : "(no output)";

    /// <summary>A self-signed P-256 certificate for localhost and 127.0.0.1, as pebble's own HTTPS certificate.</summary>
    private static X509Certificate2 WriteApiCertificate(TempDir dir)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=pebble test API", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName("localhost");
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddDays(7));
        File.WriteAllText(dir.Combine("api-cert.pem"), certificate.ExportCertificatePem());
        File.WriteAllText(dir.Combine("api-key.pem"), key.ExportPkcs8PrivateKeyPem());
        return X509Certificate2.CreateFromPem(certificate.ExportCertificatePem());
    }

    private static Process Start(TempDir dir, string program, string[] arguments, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(program) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir.Path };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        foreach (var (name, value) in environment) start.Environment[name] = value;
        var process = Process.Start(start)!;
        // Appended line by line (pebble logs a few lines per request), so no writer outlives the process.
        var log = dir.Combine(program + ".log");
        var gate = new Lock();
        void Write(string? line)
        {
            if (line is null) return;
            lock (gate) File.AppendAllText(log, line + "\n");
        }
        process.OutputDataReceived += (_, e) => Write(e.Data);
        process.ErrorDataReceived += (_, e) => Write(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Stop(Process process)
    {
        if (process.HasExited) return;
        Cutover.Platform.LibC.Kill(process.Id, 15);
        if (!process.WaitForExit(10_000)) process.Kill();
        process.WaitForExit();
    }

    private static async Task EnsureInstalledAsync()
    {
        if (File.Exists("/usr/bin/pebble") && File.Exists("/usr/bin/pebble-challtestsrv")) return;
        var install = new ProcessStartInfo("apt-get") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-o", "DPkg::Lock::Timeout=300", "install", "-y", "-qq", "--no-install-recommends", "pebble" }) install.ArgumentList.Add(argument);
        install.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using var process = Process.Start(install)!;
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"pebble is needed (apt-get install pebble; ./test.sh installs it): apt-get failed: {await stderr}");
    }
}
