using System.Security.Cryptography;
using System.Text;
using Cutover.Platform;

namespace Cutover.Acme;

/// <summary>
/// Account key and certificates on disk, under one directory per ACME directory URL (an account and its
/// certificates belong to one CA): <c>account.pem</c>, and per name set one <c>&lt;name&gt;-&lt;hash&gt;.pem</c>
/// holding the private key and the chain together, so one rename replaces both and a crash never pairs a new
/// chain with an old key. Directory 0700, files 0600.
/// </summary>
public sealed class CertificateStore
{
    private const UnixFileMode OwnerOnlyFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public CertificateStore(string directory)
    {
        Directory = directory;
    }

    public string Directory { get; }

    /// <summary><paramref name="root"/> (the agent's CUTOVER_HOME/certs) / host of the ACME directory + a hash of its URL.</summary>
    public static CertificateStore ForAcmeDirectory(string root, Uri acmeDirectory)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(acmeDirectory.AbsoluteUri)))[..12];
        return new CertificateStore(Path.Combine(root, $"{Sanitize(acmeDirectory.Host)}-{hash}"));
    }

    public string AccountKeyPath => Path.Combine(Directory, "account.pem");

    /// <summary>The stored account key, or a new one written first. An unreadable key is an error, not replaced.</summary>
    public AccountKey LoadOrCreateAccountKey()
    {
        EnsureDirectory();
        if (File.Exists(AccountKeyPath))
        {
            try
            {
                return AccountKey.FromPem(File.ReadAllText(AccountKeyPath));
            }
            catch (Exception e) when (e is CryptographicException or ArgumentException)
            {
                throw new AcmeException($"the ACME account key {AccountKeyPath} cannot be read ({e.Message}); move it away to register a new account");
            }
        }
        var key = AccountKey.Create();
        WriteOwnerOnly(AccountKeyPath, key.ExportPem());
        return key;
    }

    /// <summary>The file of a name set: readable first name, then a hash of the whole (sorted) set.</summary>
    public string PathFor(IReadOnlyList<string> sortedNames)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(string.Join('\n', sortedNames))))[..16];
        return Path.Combine(Directory, $"{Sanitize(sortedNames[0])}-{hash}.pem");
    }

    /// <summary>
    /// The stored certificate for the set, or null when there is none. A file that cannot be read as key + chain is
    /// reported in <paramref name="problem"/> (and is then simply obtained again): a corrupt store never stops TLS.
    /// </summary>
    public ServedCertificate? TryLoad(IReadOnlyList<string> sortedNames, out string? problem)
    {
        problem = null;
        var path = PathFor(sortedNames);
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        catch (DirectoryNotFoundException)
        {
            return null;
        }
        try
        {
            var keys = CertificatePem.Blocks(text, "PRIVATE KEY");
            if (keys.Count != 1) throw new CryptographicException($"expected one PRIVATE KEY, found {keys.Count}");
            return ServedCertificate.FromPem(text, keys[0]);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            problem = $"{path} is not a certificate and key ({e.Message})";
            return null;
        }
    }

    /// <summary>Checks that the issued PEM loads, then writes it; so what is on disk always loads.</summary>
    public ServedCertificate Save(IReadOnlyList<string> sortedNames, IssuedCertificate issued)
    {
        ServedCertificate certificate;
        try
        {
            certificate = ServedCertificate.FromPem(issued.ChainPem, issued.PrivateKeyPem);
        }
        catch (CryptographicException e)
        {
            throw new AcmeException($"the certificate issued for {string.Join(", ", sortedNames)} cannot be loaded: {e.Message}", e);
        }
        EnsureDirectory();
        WriteOwnerOnly(PathFor(sortedNames), issued.PrivateKeyPem.TrimEnd() + "\n" + issued.ChainPem.TrimEnd() + "\n");
        return certificate;
    }

    public void Delete(IReadOnlyList<string> sortedNames) => File.Delete(PathFor(sortedNames));

    private void EnsureDirectory()
    {
        System.IO.Directory.CreateDirectory(Directory, OwnerOnlyDirectory);
        File.SetUnixFileMode(Directory, OwnerOnlyDirectory);
    }

    /// <summary>
    /// Created 0600 (before the rename, so never readable by anyone else) and renamed into place; the 0700
    /// directory is a second fence.
    /// </summary>
    private static void WriteOwnerOnly(string path, string content)
    {
        AtomicFile.WriteAllText(path, content, OwnerOnlyFile);
    }

    private static string Sanitize(string name) =>
        new(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' ? c : '_').ToArray());
}
