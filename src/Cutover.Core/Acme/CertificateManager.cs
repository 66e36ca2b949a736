using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Cutover.Acme;

/// <summary>When to renew and how to back off. Immutable; the defaults are the issue's.</summary>
public sealed record RenewalPolicy
{
    /// <summary>Renew this long before expiry, or at a third of the lifetime left for certificates shorter than 90 days.</summary>
    public TimeSpan RenewBefore { get; init; } = TimeSpan.FromDays(30);

    /// <summary>The wait after the first failed attempt; it doubles with each further failure up to <see cref="MaxRetryDelay"/>.</summary>
    public TimeSpan FirstRetryDelay { get; init; } = TimeSpan.FromMinutes(1);

    public TimeSpan MaxRetryDelay { get; init; } = TimeSpan.FromHours(6);

    /// <summary>The background loop's longest sleep, so a clock step or a changed name set is noticed.</summary>
    public TimeSpan MaxSleep { get; init; } = TimeSpan.FromHours(12);
}

/// <summary>What `cutover status` shows about the certificate: what is served, until when, and the last failure.</summary>
public sealed record CertificateStatus(
    IReadOnlyList<string> Names,
    DateTimeOffset? NotAfter,
    DateTimeOffset? RenewAt,
    string? LastError,
    DateTimeOffset? LastFailureAt,
    DateTimeOffset? NextAttemptAt,
    int ConsecutiveFailures);

/// <summary>
/// Keeps one certificate for the proxy's names: <see cref="EnsureAsync"/> before the app gets traffic on 443
/// (stored one if it fits and is not due, else obtained), <see cref="RunAsync"/> renews in the background with
/// exponential backoff, and <see cref="TryGetCertificate"/> is the SNI lookup. The certificate being served
/// stays in service through every failed renewal and through a change of names until its replacement exists.
/// </summary>
/// <remarks>
/// Wiring, in the agent: <c>store = CertificateStore.ForAcmeDirectory(Path.Combine(home, "certs"), options.Directory)</c>;
/// one <see cref="Http01Challenges"/> that the port-80 listener asks first (<c>TryAnswer(path, out body)</c>);
/// <c>new CertificateManager(store, new AcmeIssuer(new AcmeClient(options, store.LoadOrCreateAccountKey()), challenges), logger: log)</c>;
/// <c>await EnsureAsync(proxy.hosts)</c> before 443 takes traffic; <c>RunAsync(agentStopping)</c> for the agent's life; the 443
/// listener's certificate selector returns <c>TryGetCertificate(sni, out var c) ? c.Context : null</c>.
/// </remarks>
public sealed class CertificateManager
{
    private readonly CertificateStore _store;
    private readonly ICertificateIssuer _issuer;
    private readonly RenewalPolicy _policy;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly SemaphoreSlim _changed = new(0, 1);
    private volatile State _state = State.Empty;

    public CertificateManager(CertificateStore store, ICertificateIssuer issuer, RenewalPolicy? policy = null, TimeProvider? time = null, ILogger? logger = null)
    {
        _store = store;
        _issuer = issuer;
        _policy = policy ?? new RenewalPolicy();
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    public CertificateStatus Status
    {
        get
        {
            var state = _state;
            return new CertificateStatus(state.Names, state.Current?.NotAfter, state.Current is { } c ? RenewAt(c) : null,
                state.LastError, state.LastFailureAt, state.NextAttemptAt, state.ConsecutiveFailures);
        }
    }

    /// <summary>
    /// Makes sure a certificate for exactly <paramref name="names"/> is served. Uses the stored one when it covers
    /// them and is not due; otherwise obtains one now. Throws (AcmeException) only when no valid certificate for the
    /// names can be served; a failed renewal of a still-valid one is recorded and left to the background loop.
    /// </summary>
    public async Task EnsureAsync(IEnumerable<string> names, CancellationToken cancellationToken)
    {
        var wanted = Normalize(names);
        _issuer.CheckNames(wanted);
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var state = _state;
            if (!state.Names.SequenceEqual(wanted))
            {
                // New names: whatever was served keeps serving its names until the new certificate exists.
                var loaded = _store.TryLoad(wanted, out var problem);
                if (problem is not null) _logger.LogWarning("Stored certificate unusable, obtaining a new one: {Problem}", problem);
                if (loaded is not null && !loaded.Names.SequenceEqual(wanted)) loaded = null;
                var retired = state.Current is null ? state.Retired : state.Current;
                state = Publish(new State(wanted, loaded, retired, null, null, null, 0));
            }
            if (state.Current is { } current && Now < RenewAt(current)) return;

            var error = await AttemptAsync(state, cancellationToken);
            if (error is not null && (_state.Current is null || _state.Current.NotAfter <= Now))
                throw new AcmeException($"no certificate for {string.Join(", ", wanted)}: {error.Message}", error);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// The certificate for a TLS client's SNI: the exact name, else a wildcard for its parent (*.example.com for
    /// a.example.com, one label only, as RFC 6125 matches). False for no SNI or a name no certificate covers.
    /// </summary>
    public bool TryGetCertificate(string? serverName, [NotNullWhen(true)] out ServedCertificate? certificate)
    {
        certificate = null;
        if (string.IsNullOrEmpty(serverName)) return false;
        var name = serverName.TrimEnd('.').ToLowerInvariant();
        var byName = _state.ByName;
        if (byName.TryGetValue(name, out certificate)) return true;
        var dot = name.IndexOf('.');
        return dot > 0 && byName.TryGetValue("*" + name[dot..], out certificate);
    }

    /// <summary>One step of the background loop: renews when due and the backoff allows. Never throws but for cancellation.</summary>
    public async Task RenewIfDueAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var state = _state;
            if (state.Names.Count == 0) return;
            if (state.Current is { } current && Now < RenewAt(current)) return;
            if (state.NextAttemptAt is { } next && Now < next) return;
            await AttemptAsync(state, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>When the background loop next has something to do.</summary>
    public DateTimeOffset NextCheckAt
    {
        get
        {
            var state = _state;
            if (state.Names.Count == 0) return Now + _policy.MaxSleep;
            var due = state.Current is { } current ? RenewAt(current) : Now;
            return state.NextAttemptAt is { } next && next > due ? next : due;
        }
    }

    /// <summary>Renews in the background until cancelled (the agent's lifetime).</summary>
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var wait = NextCheckAt - Now;
            if (wait > _policy.MaxSleep) wait = _policy.MaxSleep;
            if (wait > TimeSpan.Zero)
            {
                // Sleep until due, or until EnsureAsync changed what is due (names set, a failure's retry time).
                using var sleep = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                await Task.WhenAny(Task.Delay(wait, _time, sleep.Token), _changed.WaitAsync(sleep.Token));
                await sleep.CancelAsync();
            }
            cancellationToken.ThrowIfCancellationRequested();
            await RenewIfDueAsync(cancellationToken);
        }
    }

    private DateTimeOffset Now => _time.GetUtcNow();

    private State Publish(State state)
    {
        _state = state;
        try
        {
            _changed.Release();
        }
        catch (SemaphoreFullException)
        {
            // a wake-up is already pending
        }
        return state;
    }

    /// <summary>30 days before expiry, but never later than two thirds into the certificate's life (short-lived certificates).</summary>
    private DateTimeOffset RenewAt(ServedCertificate certificate)
    {
        var before = _policy.RenewBefore;
        var third = (certificate.NotAfter - certificate.NotBefore) / 3;
        return certificate.NotAfter - (third < before ? third : before);
    }

    /// <summary>Obtains and installs a certificate for the state's names; a failure is recorded and returned, not thrown.</summary>
    private async Task<Exception?> AttemptAsync(State state, CancellationToken cancellationToken)
    {
        var names = string.Join(", ", state.Names);
        try
        {
            var issued = await _issuer.IssueAsync(state.Names, cancellationToken);
            var certificate = _store.Save(state.Names, issued);
            Publish(new State(state.Names, certificate, null, null, null, null, 0));
            if (state.Retired is { } retired && !retired.Names.SequenceEqual(state.Names)) TryDelete(retired.Names);
            _logger.LogInformation("Certificate for {Names} obtained, valid until {NotAfter:u}", names, certificate.NotAfter);
            return null;
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            var failures = state.ConsecutiveFailures + 1;
            var delay = _policy.FirstRetryDelay * Math.Pow(2, Math.Min(failures - 1, 30));
            if (delay > _policy.MaxRetryDelay) delay = _policy.MaxRetryDelay;
            var next = Now + delay;
            Publish(new State(state.Names, state.Current, state.Retired, e.Message, Now, next, failures));
            _logger.LogWarning("Certificate for {Names}: attempt {Failures} failed, next at {Next:u}{Serving}: {Error}", names, failures, next,
                state.Current is null ? "" : $" (still serving the one valid until {state.Current.NotAfter:u})", e.Message);
            return e;
        }
    }

    private void TryDelete(IReadOnlyList<string> names)
    {
        try
        {
            _store.Delete(names);
        }
        catch (IOException e)
        {
            _logger.LogWarning("Could not remove the certificate for {Names}, no longer needed: {Error}", string.Join(", ", names), e.Message);
        }
    }

    /// <summary>Lower case, no trailing dot, no duplicates, sorted; each a DNS name or a one-label wildcard.</summary>
    internal static IReadOnlyList<string> Normalize(IEnumerable<string> names)
    {
        var normalized = names.Select(n => n.Trim().TrimEnd('.').ToLowerInvariant()).Distinct().Order(StringComparer.Ordinal).ToList();
        if (normalized.Count == 0) throw new InputException("a certificate needs at least one host name (proxy.hosts is empty)");
        foreach (var name in normalized)
            if (!IsHostName(name)) throw new InputException($"\"{name}\" is not a DNS name a certificate can be issued for");
        return normalized;
    }

    private static bool IsHostName(string name)
    {
        var labels = (name.StartsWith("*.", StringComparison.Ordinal) ? name[2..] : name).Split('.');
        return name.Length <= 253 && labels.Length >= 2 && labels.All(l =>
            l.Length is > 0 and <= 63 && l[0] != '-' && l[^1] != '-' && l.All(c => char.IsAsciiLetterOrDigit(c) || c == '-'));
    }

    /// <summary>
    /// Everything the manager knows, replaced as a whole so SNI lookups read without a lock. Retired is the
    /// certificate of the previous names, served for them until the current names have one. Built with `new`, not
    /// `with`: ByName is computed once from Current and Retired.
    /// </summary>
    private sealed record State(
        IReadOnlyList<string> Names,
        ServedCertificate? Current,
        ServedCertificate? Retired,
        string? LastError,
        DateTimeOffset? LastFailureAt,
        DateTimeOffset? NextAttemptAt,
        int ConsecutiveFailures)
    {
        public static readonly State Empty = new([], null, null, null, null, null, 0);

        public FrozenDictionary<string, ServedCertificate> ByName { get; } = Index(Current, Retired);

        private static FrozenDictionary<string, ServedCertificate> Index(ServedCertificate? current, ServedCertificate? retired)
        {
            var byName = new Dictionary<string, ServedCertificate>(StringComparer.Ordinal);
            foreach (var certificate in new[] { retired, current })
                if (certificate is not null)
                    foreach (var name in certificate.Names) byName[name] = certificate;
            return byName.ToFrozenDictionary(StringComparer.Ordinal);
        }
    }
}
