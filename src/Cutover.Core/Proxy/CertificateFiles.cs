using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;

namespace Cutover.Proxy;

/// <summary>
/// A certificate (chain) and key from PEM files, reloaded when either file changes: a FileSystemWatcher on their
/// directories for promptness, and a poll of their content hash every second because watchers miss changes (NFS,
/// a replaced directory, a symlink flip as certbot does). The new pair is swapped in atomically; handshakes already
/// done keep theirs, so no connection drops. A pair that does not load (half-written, key not matching) keeps the
/// old certificate and logs why, once per content.
/// </summary>
public sealed class CertificateFiles : ICertificateSource
{
    private readonly string _certFile;
    private readonly string _keyFile;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<FileSystemWatcher> _watchers = [];
    private readonly SemaphoreSlim _changed = new(0, 1);
    private SslStreamCertificateContext _current;
    private byte[] _loadedHash;
    private byte[]? _refusedHash;
    private bool _unreadableLogged;

    private CertificateFiles(string certFile, string keyFile, ILogger logger, SslStreamCertificateContext current, byte[] hash)
    {
        _certFile = certFile;
        _keyFile = keyFile;
        _logger = logger;
        _current = current;
        _loadedHash = hash;
    }

    /// <summary>The leaf in use now (for status and tests).</summary>
    public X509Certificate2 Certificate => Volatile.Read(ref _current).TargetCertificate;

    /// <summary>Loads the pair now (a clear DeployException when it cannot) and starts watching it.</summary>
    public static CertificateFiles Open(string certFile, string keyFile, ILogger logger)
    {
        var hash = HashOf(certFile, keyFile);
        SslStreamCertificateContext context;
        try
        {
            context = Load(certFile, keyFile);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            throw new DeployException($"proxy.tls: cannot load certificate {certFile} with key {keyFile}: {e.Message}");
        }
        var files = new CertificateFiles(certFile, keyFile, logger, context, hash);
        files.Watch();
        return files;
    }

    public SslStreamCertificateContext? TryGetCertificate(string? serverName) => Volatile.Read(ref _current);

    private static SslStreamCertificateContext Load(string certFile, string keyFile)
    {
        var leaf = X509Certificate2.CreateFromPemFile(certFile, keyFile);
        if (!leaf.HasPrivateKey) throw new CryptographicException("the key does not belong to the certificate");
        var chain = new X509Certificate2Collection();
        chain.ImportFromPemFile(certFile);
        // The file's first certificate is the leaf; the rest are the intermediates the handshake sends with it.
        var intermediates = new X509Certificate2Collection(chain.Skip(1).ToArray());
        return SslStreamCertificateContext.Create(leaf, intermediates, offline: true);
    }

    private static byte[] HashOf(string certFile, string keyFile)
    {
        try
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            sha.AppendData(File.ReadAllBytes(certFile));
            sha.AppendData(File.ReadAllBytes(keyFile));
            return sha.GetHashAndReset();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DeployException($"proxy.tls: cannot read {certFile} and {keyFile}: {e.Message}");
        }
    }

    private void Watch()
    {
        foreach (var directory in new[] { Path.GetDirectoryName(_certFile)!, Path.GetDirectoryName(_keyFile)! }.Distinct())
        {
            try
            {
                var watcher = new FileSystemWatcher(directory) { IncludeSubdirectories = false, NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size };
                watcher.Changed += (_, _) => Nudge();
                watcher.Created += (_, _) => Nudge();
                watcher.Renamed += (_, _) => Nudge();
                watcher.EnableRaisingEvents = true;
                _watchers.Add(watcher);
            }
            catch (Exception e) when (e is IOException or ArgumentException or PlatformNotSupportedException)
            {
                // inotify limits: the poll still sees every change, a second later.
                _logger.LogWarning("cannot watch {Directory} for certificate changes ({Error}); polling only", directory, e.Message);
            }
        }
        _ = Task.Run(() => ReloadLoopAsync(_stop.Token));
    }

    private void Nudge()
    {
        try
        {
            if (_changed.CurrentCount == 0) _changed.Release();
        }
        catch (SemaphoreFullException)
        {
            // already nudged
        }
        catch (ObjectDisposedException)
        {
            // stopped
        }
    }

    private async Task ReloadLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await _changed.WaitAsync(TimeSpan.FromSeconds(1), cancellationToken);
                // Writers replace cert and key one after the other: let both land before reading.
                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
                ReloadIfChanged();
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception e)
            {
                _logger.LogWarning("certificate reload of {Cert}: {Error}", _certFile, e.Message);
            }
        }
    }

    /// <summary>Loads the files again when their content changed; a pair that does not load keeps the old one.</summary>
    internal void ReloadIfChanged()
    {
        byte[] hash;
        try
        {
            hash = HashOf(_certFile, _keyFile);
        }
        catch (DeployException e)
        {
            // Unreadable (mid-replace, permissions): logged once until the files read again.
            if (!_unreadableLogged) _logger.LogWarning("{Error}; keeping the certificate in use", e.Message);
            _unreadableLogged = true;
            return;
        }
        _unreadableLogged = false;
        if (hash.AsSpan().SequenceEqual(_loadedHash) || (_refusedHash is not null && hash.AsSpan().SequenceEqual(_refusedHash))) return;
        try
        {
            var context = Load(_certFile, _keyFile);
            Volatile.Write(ref _current, context);
            _loadedHash = hash;
            _refusedHash = null;
            _logger.LogInformation("reloaded certificate {Cert}: {Subject}, expires {Expiry:u}", _certFile, context.TargetCertificate.Subject, context.TargetCertificate.NotAfter.ToUniversalTime());
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            _refusedHash = hash;
            _logger.LogWarning("certificate {Cert} with key {Key} does not load ({Error}); keeping the certificate in use", _certFile, _keyFile, e.Message);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        foreach (var watcher in _watchers) watcher.Dispose();
    }
}
