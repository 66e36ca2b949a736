using System.Security.Cryptography;
using System.Text;

namespace Cutover.Fleet;

public enum HostKeyVerdict { Known, Unknown, Changed }

/// <summary>
/// An OpenSSH known_hosts file: plain entries (host, [host]:port, comma-separated patterns) and hashed ones
/// (|1|salt|hash). A key is trusted only when an entry for the host holds exactly that key; a host listed with a
/// different key of the same type has <em>changed</em> its key, which is always refused. Marker lines
/// (@cert-authority, @revoked) are not supported and never trust anything.
/// </summary>
public sealed class KnownHosts(string path)
{
    private readonly Lock _gate = new();

    public string Path => path;

    /// <summary>How OpenSSH names a host in known_hosts: "host" on port 22, "[host]:port" otherwise.</summary>
    public static string HostPattern(string host, int port) => port == 22 ? host : $"[{host}]:{port}";

    /// <summary>"SHA256:..." as ssh-keygen -l prints it: base64 without padding.</summary>
    public static string Fingerprint(byte[] keyBlob) => "SHA256:" + Convert.ToBase64String(SHA256.HashData(keyBlob)).TrimEnd('=');

    public HostKeyVerdict Check(string host, int port, string keyType, byte[] keyBlob)
    {
        var name = HostPattern(host, port);
        var sawOtherKey = false;
        lock (_gate)
        {
            if (!File.Exists(path)) return HostKeyVerdict.Unknown;
            foreach (var raw in File.ReadLines(path))
            {
                var line = raw.Trim();
                if (line.Length == 0 || line.StartsWith('#') || line.StartsWith('@')) continue;
                var fields = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 3 || !Matches(fields[0], name)) continue;
                if (fields[1] != keyType) continue;
                byte[] blob;
                try
                {
                    blob = Convert.FromBase64String(fields[2]);
                }
                catch (FormatException)
                {
                    continue;
                }
                if (blob.AsSpan().SequenceEqual(keyBlob)) return HostKeyVerdict.Known;
                sawOtherKey = true;
            }
        }
        return sawOtherKey ? HostKeyVerdict.Changed : HostKeyVerdict.Unknown;
    }

    /// <summary>Records a host's key (for --accept-new-host-keys), as a plain entry like ssh's accept-new.</summary>
    public void Add(string host, int port, string keyType, byte[] keyBlob)
    {
        lock (_gate)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
            var needsNewline = File.Exists(path) && new FileInfo(path).Length > 0 && !File.ReadAllText(path).EndsWith('\n');
            File.AppendAllText(path, (needsNewline ? "\n" : "") + $"{HostPattern(host, port)} {keyType} {Convert.ToBase64String(keyBlob)}\n");
        }
    }

    private static bool Matches(string patterns, string name)
    {
        if (patterns.StartsWith("|1|", StringComparison.Ordinal))
        {
            var parts = patterns.Split('|');
            if (parts.Length != 4) return false;
            try
            {
                var salt = Convert.FromBase64String(parts[2]);
                var expected = Convert.FromBase64String(parts[3]);
                return HMACSHA1.HashData(salt, Encoding.ASCII.GetBytes(name)).AsSpan().SequenceEqual(expected);
            }
            catch (FormatException)
            {
                return false;
            }
        }
        var matched = false;
        foreach (var pattern in patterns.Split(','))
        {
            if (pattern.StartsWith('!'))
            {
                if (Glob(pattern[1..], name)) return false;
            }
            else if (Glob(pattern, name))
            {
                matched = true;
            }
        }
        return matched;
    }

    /// <summary>known_hosts wildcards: * and ?, case-insensitive like host names.</summary>
    private static bool Glob(string pattern, string name) =>
        System.Text.RegularExpressions.Regex.IsMatch(name,
            "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace(@"\*", ".*").Replace(@"\?", ".") + "$",
            System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant);
}
