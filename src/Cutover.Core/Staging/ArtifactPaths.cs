namespace Cutover.Staging;

/// <summary>The checks that keep an artifact inside its release: no absolute paths, no '..', no links out.</summary>
public static class ArtifactPaths
{
    private const int MaxNameBytes = 255;

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..40] + "..." + text[^12..];

    /// <summary>Turns an archive member name into a clean relative path, or null for the archive's own root ("./").</summary>
    public static string? Normalize(string name, string artifact)
    {
        var path = name.Replace('\\', '/');
        if (path.StartsWith('/'))
            throw new ArtifactException($"{artifact}: entry '{name}' is an absolute path; archives must hold relative paths");
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".").ToArray();
        if (parts.Contains(".."))
            throw new ArtifactException($"{artifact}: entry '{name}' contains '..' and would be written outside the release");
        // Linux file names are at most 255 bytes (NAME_MAX); a longer one could be archived elsewhere but never written here.
        if (parts.FirstOrDefault(p => System.Text.Encoding.UTF8.GetByteCount(p) > MaxNameBytes) is { } tooLong)
            throw new ArtifactException($"{artifact}: entry '{Shorten(name)}' has a name of {System.Text.Encoding.UTF8.GetByteCount(tooLong)} bytes" +
                                        (parts.Length > 1 ? $" ('{Shorten(tooLong)}')" : "") + $"; file names on Linux are at most {MaxNameBytes} bytes");
        return parts.Length == 0 ? null : string.Join('/', parts);
    }

    /// <summary>Refuses a symlink whose target resolves outside the release (absolute, or climbing out with '..').</summary>
    public static void CheckSymlink(string path, string target, string artifact)
    {
        if (target.StartsWith('/'))
            throw new ArtifactException($"{artifact}: symlink '{path}' points to the absolute path '{target}', outside the release");
        var depth = path.Split('/').Length - 1; // directories above the link inside the release
        foreach (var part in target.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".") continue;
            depth += part == ".." ? -1 : 1;
            if (depth < 0)
                throw new ArtifactException($"{artifact}: symlink '{path}' points to '{target}', outside the release");
        }
    }
}
