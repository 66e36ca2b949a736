using Cutover.Acme;
using Cutover.Logging;
using Cutover.Tests.Support;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Cutover.Tests.Acme;

/// <summary>
/// A real pebble, the challenge server it validates against, and a certificate store in a temp CUTOVER_HOME;
/// managers made here share that store (as an agent's restarts do) and a fake clock for renewal decisions.
/// The ACME traffic itself runs on real time.
/// </summary>
public sealed class AcmeBed : IAsyncDisposable
{
    private readonly List<IDisposable> _owned = [];

    private AcmeBed(PebbleChallengeServer challenges, PebbleServer pebble, TempDir home)
    {
        ChallengeServer = challenges;
        Pebble = pebble;
        Home = home;
        Store = CertificateStore.ForAcmeDirectory(home.Combine("certs"), pebble.Directory);
    }

    public PebbleChallengeServer ChallengeServer { get; }
    public PebbleServer Pebble { get; }
    public TempDir Home { get; }
    public CertificateStore Store { get; }
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);
    public string AgentLog => Home.Combine("agent.log");

    public static async Task<AcmeBed> StartAsync(int nonceRejectPercent = 0, int authzReusePercent = 0)
    {
        var challenges = await PebbleChallengeServer.StartAsync();
        try
        {
            var pebble = await PebbleServer.StartAsync(challenges.Port, nonceRejectPercent, authzReusePercent);
            return new AcmeBed(challenges, pebble, new TempDir("cutover-acme-"));
        }
        catch
        {
            await challenges.DisposeAsync();
            throw;
        }
    }

    /// <summary>A client on the store's account key; disposed with the bed.</summary>
    public AcmeClient NewClient()
    {
        var client = new AcmeClient(Pebble.Options(), Store.LoadOrCreateAccountKey());
        _owned.Add(client);
        return client;
    }

    /// <summary>A manager as the agent makes one: store, ACME issuer, the fake clock, and agent.log for its reports.</summary>
    public CertificateManager NewManager(AcmeClient? client = null, RenewalPolicy? policy = null)
    {
        var logs = new FileLoggerProvider(new RotatingLogFile(AgentLog, "", 1 << 20, 1));
        _owned.Add(logs);
        var issuer = new AcmeIssuer(client ?? NewClient(), ChallengeServer.Challenges);
        return new CertificateManager(Store, issuer, policy, Clock, logs.CreateLogger("acme"));
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var owned in _owned) owned.Dispose();
        await Pebble.DisposeAsync();
        await ChallengeServer.DisposeAsync();
        Home.Dispose();
    }
}
