namespace Cutover.Config;

/// <summary>Rules for shared paths: relative, inside the release, and never nested in one another.</summary>
public static class SharedPaths
{
    /// <summary>Normalises <c>./storage/</c> to <c>storage</c>; returns an error for paths that would leave the root.</summary>
    public static string? Normalize(string raw, out string? error)
    {
        error = null;
        var path = raw.Trim().Replace('\\', '/');
        if (path.StartsWith('/') || path.StartsWith('~'))
        {
            error = $"'{raw}' is absolute; shared paths are relative to the release, like storage or .env";
            return null;
        }
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        if (parts.Length == 0)
        {
            error = $"'{raw}' names the release itself; name a file or directory inside it";
            return null;
        }
        if (parts.Contains(".."))
        {
            error = $"'{raw}' contains '..' and would leave the release root";
            return null;
        }
        if (parts[0] == ".cutover")
        {
            error = $"'{raw}' is inside .cutover, which Cutover owns";
            return null;
        }
        return string.Join('/', parts);
    }

    /// <summary>True when one path is the other or contains it (storage and storage/logs).</summary>
    public static bool Overlap(string a, string b) =>
        a == b || a.StartsWith(b + "/", StringComparison.Ordinal) || b.StartsWith(a + "/", StringComparison.Ordinal);
}
