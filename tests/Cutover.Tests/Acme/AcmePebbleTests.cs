using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Cutover.Acme;
using Cutover.Tests.Support;

namespace Cutover.Tests.Acme;

/// <summary>
/// Certificates from a real ACME server (pebble) through the client, issuer, store and manager the agent uses,
/// validated over http-01 against a real listener. Each test has its own pebble (its CA is new each launch).
/// </summary>
[Trait(Needs.Trait, Needs.Pebble)]
public sealed class AcmePebbleTests
{
    private static readonly string[] TwoNames = ["app.cutover.test", "www.cutover.test"];

    [Fact]
    public async Task Obtains_one_certificate_for_two_names_chained_to_pebbles_root_and_serves_it_by_SNI()
    {
        await using var bed = await AcmeBed.StartAsync();
        var manager = bed.NewManager();

        await manager.EnsureAsync(TwoNames, CancellationToken.None);

        Assert.True(manager.TryGetCertificate("www.cutover.test", out var served));
        Assert.Equal(TwoNames, served.Names);
        Assert.True(served.Certificate.HasPrivateKey);
        Assert.Equal(2, bed.ChallengeServer.Answered); // one http-01 validation per name
        Assert.Equal(0, bed.ChallengeServer.Challenges.Count); // answers withdrawn afterwards
        using var root = await bed.Pebble.RootAsync();
        using var intermediate = await bed.Pebble.IntermediateAsync();
        Assert.Equal(intermediate.SubjectName.Name, served.Certificate.IssuerName.Name);
        Assert.Contains(served.Intermediates, c => c.Thumbprint == intermediate.Thumbprint);

        // A TLS client that trusts only pebble's root completes the chain from what the server sends.
        var presented = await HandshakeAsync(served, "app.cutover.test", root);
        Assert.Equal(served.Certificate.Thumbprint, presented.Thumbprint);
        Assert.Null(manager.Status.LastError);
        Assert.Equal(served.NotAfter, manager.Status.NotAfter);
    }

    [Fact]
    public async Task BadNonce_refusals_are_signed_again_with_the_refusals_nonce()
    {
        await using var bed = await AcmeBed.StartAsync(nonceRejectPercent: 50);
        var client = bed.NewClient();
        var manager = bed.NewManager(client);

        await manager.EnsureAsync(TwoNames, CancellationToken.None);

        Assert.True(manager.TryGetCertificate("app.cutover.test", out _));
        Assert.True(client.BadNonceRetries > 0, "pebble rejected no nonce: the test proves nothing");
    }

    [Fact]
    public async Task A_stored_certificate_is_reused_by_a_restarted_manager_without_a_new_order()
    {
        await using var bed = await AcmeBed.StartAsync();
        await bed.NewManager().EnsureAsync(TwoNames, CancellationToken.None);
        Assert.Equal(2, bed.ChallengeServer.Answered);
        var stored = bed.Store.TryLoad(TwoNames, out _)!;

        var restarted = bed.NewManager();
        await restarted.EnsureAsync(["WWW.cutover.test", "app.cutover.test"], CancellationToken.None);

        Assert.Equal(2, bed.ChallengeServer.Answered); // no order, no validation
        Assert.True(restarted.TryGetCertificate("app.cutover.test", out var served));
        Assert.Equal(stored.Certificate.SerialNumber, served.Certificate.SerialNumber);
    }

    [Fact]
    public async Task Changed_names_get_a_new_certificate_and_the_old_one_serves_until_then()
    {
        await using var bed = await AcmeBed.StartAsync();
        var manager = bed.NewManager();
        await manager.EnsureAsync(["app.cutover.test"], CancellationToken.None);
        Assert.True(manager.TryGetCertificate("app.cutover.test", out var first));
        var firstFile = bed.Store.PathFor(["app.cutover.test"]);

        await manager.EnsureAsync(["app.cutover.test", "api.cutover.test"], CancellationToken.None);

        Assert.True(manager.TryGetCertificate("api.cutover.test", out var second));
        Assert.Equal(["api.cutover.test", "app.cutover.test"], second.Names);
        Assert.NotEqual(first.Certificate.SerialNumber, second.Certificate.SerialNumber);
        Assert.True(manager.TryGetCertificate("app.cutover.test", out var now));
        Assert.Same(second, now);
        Assert.False(File.Exists(firstFile)); // the certificate of the old names is not kept around
        Assert.Equal(["api.cutover.test", "app.cutover.test"], manager.Status.Names);
    }

    [Fact]
    public async Task Renewal_in_the_background_30_days_before_expiry_on_an_order_that_starts_ready()
    {
        // Every authorization reused: the renewal's order comes back `ready`, with nothing to validate.
        await using var bed = await AcmeBed.StartAsync(authzReusePercent: 100);
        var manager = bed.NewManager();
        await manager.EnsureAsync(TwoNames, CancellationToken.None);
        Assert.True(manager.TryGetCertificate("app.cutover.test", out var first));
        var answered = bed.ChallengeServer.Answered;
        using var stop = new CancellationTokenSource();
        var loop = manager.RunAsync(stop.Token);

        bed.Clock.SetUtcNow(first.NotAfter - TimeSpan.FromDays(31));
        await Task.Delay(200);
        Assert.True(manager.TryGetCertificate("app.cutover.test", out var notYet));
        Assert.Same(first, notYet);

        bed.Clock.SetUtcNow(first.NotAfter - TimeSpan.FromDays(29));
        bed.Clock.Advance(TimeSpan.FromDays(1)); // fires the loop's timer, set for the renewal time
        await Wait.UntilAsync(() =>
        {
            if (manager.Status.LastError is { } error) throw new Xunit.Sdk.XunitException($"the renewal failed: {error}");
            return manager.TryGetCertificate("app.cutover.test", out var renewed) && renewed.Certificate.SerialNumber != first.Certificate.SerialNumber;
        }, TimeSpan.FromSeconds(30), "the background loop to renew the certificate");

        Assert.Equal(answered, bed.ChallengeServer.Answered);
        Assert.Null(manager.Status.LastError);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop);
    }

    [Fact]
    public async Task A_failed_renewal_keeps_serving_the_old_certificate_records_the_error_and_backs_off()
    {
        await using var bed = await AcmeBed.StartAsync();
        var policy = new RenewalPolicy { FirstRetryDelay = TimeSpan.FromMinutes(1), MaxRetryDelay = TimeSpan.FromMinutes(3) };
        var manager = bed.NewManager(policy: policy);
        await manager.EnsureAsync(TwoNames, CancellationToken.None);
        Assert.True(manager.TryGetCertificate("app.cutover.test", out var old));
        bed.Pebble.StopAcme();
        bed.Clock.SetUtcNow(old.NotAfter - TimeSpan.FromDays(10));
        var due = bed.Clock.GetUtcNow();

        await manager.RenewIfDueAsync(CancellationToken.None);

        var status = manager.Status;
        Assert.Equal(1, status.ConsecutiveFailures);
        Assert.Contains("could not reach the ACME server", status.LastError);
        Assert.Equal(due, status.LastFailureAt);
        Assert.Equal(due + TimeSpan.FromMinutes(1), status.NextAttemptAt);
        Assert.True(manager.TryGetCertificate("app.cutover.test", out var stillServed));
        Assert.Same(old, stillServed);
        Assert.Contains("attempt 1 failed", File.ReadAllText(bed.AgentLog));

        await manager.RenewIfDueAsync(CancellationToken.None); // within the backoff: no attempt
        Assert.Equal(1, manager.Status.ConsecutiveFailures);

        // An explicit EnsureAsync (a deploy) tries at once, and with a valid certificate in hand does not fail the deploy.
        await manager.EnsureAsync(TwoNames, CancellationToken.None);
        Assert.Equal(2, manager.Status.ConsecutiveFailures);
        Assert.Equal(due + TimeSpan.FromMinutes(2), manager.Status.NextAttemptAt);

        bed.Clock.Advance(TimeSpan.FromMinutes(2));
        await manager.RenewIfDueAsync(CancellationToken.None);
        Assert.Equal(3, manager.Status.ConsecutiveFailures);
        Assert.Equal(bed.Clock.GetUtcNow() + TimeSpan.FromMinutes(3), manager.Status.NextAttemptAt); // capped

        Assert.True(manager.TryGetCertificate("www.cutover.test", out var stillServedAfter));
        Assert.Same(old, stillServedAfter);
        Assert.NotNull(bed.Store.TryLoad(TwoNames, out _));

        // The CA is back (a new one that has forgotten the account): the next attempt re-registers and renews.
        await bed.Pebble.StartAcmeAgainAsync();
        bed.Clock.Advance(TimeSpan.FromMinutes(3));
        await manager.RenewIfDueAsync(CancellationToken.None);

        Assert.Null(manager.Status.LastError);
        Assert.Equal(0, manager.Status.ConsecutiveFailures);
        Assert.Null(manager.Status.NextAttemptAt);
        Assert.True(manager.TryGetCertificate("app.cutover.test", out var renewed));
        Assert.NotEqual(old.Certificate.SerialNumber, renewed.Certificate.SerialNumber);
        Assert.Equal(renewed.Certificate.SerialNumber, bed.Store.TryLoad(TwoNames, out _)!.Certificate.SerialNumber);
    }

    [Fact]
    public async Task The_background_loop_started_before_the_deploy_retries_the_renewal_the_deploy_saw_fail()
    {
        await using var bed = await AcmeBed.StartAsync();
        await bed.NewManager().EnsureAsync(TwoNames, CancellationToken.None);
        var stored = bed.Store.TryLoad(TwoNames, out _)!;
        bed.Pebble.StopAcme();
        bed.Clock.SetUtcNow(stored.NotAfter - TimeSpan.FromDays(10));

        // An agent restart: the loop starts with no names (a long sleep), then a deploy's EnsureAsync finds the
        // stored certificate due and its renewal failing.
        var manager = bed.NewManager();
        using var stop = new CancellationTokenSource();
        var loop = manager.RunAsync(stop.Token);
        await manager.EnsureAsync(TwoNames, CancellationToken.None);
        Assert.Equal(1, manager.Status.ConsecutiveFailures);

        bed.Clock.Advance(TimeSpan.FromMinutes(1));
        await Wait.UntilAsync(() => manager.Status.ConsecutiveFailures == 2, TimeSpan.FromSeconds(10), "the loop to retry once the backoff passed");

        Assert.True(manager.TryGetCertificate("app.cutover.test", out var served));
        Assert.Equal(stored.Certificate.SerialNumber, served.Certificate.SerialNumber);
        await stop.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => loop);
    }

    [Fact]
    public async Task Without_a_certificate_an_unreachable_CA_fails_EnsureAsync_with_a_clear_error()
    {
        await using var bed = await AcmeBed.StartAsync();
        bed.Pebble.StopAcme();
        var manager = bed.NewManager();

        var error = await Assert.ThrowsAsync<AcmeException>(() => manager.EnsureAsync(TwoNames, CancellationToken.None));

        Assert.StartsWith("no certificate for app.cutover.test, www.cutover.test: ", error.Message);
        Assert.Contains("could not reach the ACME server", error.Message);
        Assert.False(manager.TryGetCertificate("app.cutover.test", out _));
        Assert.False(File.Exists(bed.Store.PathFor(TwoNames)));
    }

    [Fact]
    public async Task Account_key_and_certificate_files_are_0600_in_a_0700_directory()
    {
        await using var bed = await AcmeBed.StartAsync();
        await bed.NewManager().EnsureAsync(TwoNames, CancellationToken.None);

        const UnixFileMode ownerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        Assert.Equal(ownerReadWrite, File.GetUnixFileMode(bed.Store.AccountKeyPath));
        Assert.Equal(ownerReadWrite, File.GetUnixFileMode(bed.Store.PathFor(TwoNames)));
        Assert.Equal(ownerReadWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(bed.Store.Directory));
        Assert.Equal(["account.pem", Path.GetFileName(bed.Store.PathFor(TwoNames))],
            Directory.GetFiles(bed.Store.Directory).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_corrupt_stored_certificate_is_obtained_again_not_a_crash()
    {
        await using var bed = await AcmeBed.StartAsync();
        await bed.NewManager().EnsureAsync(TwoNames, CancellationToken.None);
        var path = bed.Store.PathFor(TwoNames);
        var text = File.ReadAllText(path);
        File.WriteAllText(path, text[..(text.Length / 2)]); // a torn write, or a disk's damage

        var restarted = bed.NewManager();
        await restarted.EnsureAsync(TwoNames, CancellationToken.None);

        Assert.Equal(4, bed.ChallengeServer.Answered); // ordered again
        Assert.True(restarted.TryGetCertificate("app.cutover.test", out var served));
        Assert.NotNull(bed.Store.TryLoad(TwoNames, out var problem));
        Assert.Null(problem);
        Assert.Contains("Stored certificate unusable", File.ReadAllText(bed.AgentLog));
        Assert.Equal(served.Certificate.SerialNumber, bed.Store.TryLoad(TwoNames, out _)!.Certificate.SerialNumber);
    }

    [Fact]
    public async Task A_refusal_from_the_server_names_the_ACME_problem_type_and_detail()
    {
        await using var bed = await AcmeBed.StartAsync();
        var client = bed.NewClient();

        // Pebble accepts no IP address as a dns identifier.
        var error = await Assert.ThrowsAsync<AcmeProblemException>(() => client.NewOrderAsync(["127.0.0.1"], CancellationToken.None));

        Assert.StartsWith("urn:ietf:params:acme:error:", error.Type);
        Assert.Contains(error.Type, error.Message);
        Assert.False(string.IsNullOrEmpty(error.Detail));
        Assert.Contains(error.Detail!, error.Message);
        Assert.StartsWith("ordering a certificate for 127.0.0.1: the ACME server answered 4", error.Message);
    }

    /// <summary>A real TLS handshake: the server side uses the served context, the client trusts only <paramref name="root"/>.</summary>
    private static async Task<X509Certificate2> HandshakeAsync(ServedCertificate served, string serverName, X509Certificate2 root)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var serverSide = Task.Run(async () =>
        {
            using var accepted = await listener.AcceptTcpClientAsync();
            await using var tls = new SslStream(accepted.GetStream());
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificateContext = served.Context });
            await tls.WriteAsync(new byte[] { 1 });
        });
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        await using var clientTls = new SslStream(client.GetStream());
        await clientTls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            CertificateChainPolicy = TrustOnly.Root(root),
        });
        await clientTls.ReadExactlyAsync(new byte[1]);
        await serverSide;
        return new X509Certificate2(clientTls.RemoteCertificate!);
    }
}
