using Microsoft.Extensions.FileSystemGlobbing;
using Microsoft.Extensions.FileSystemGlobbing.Abstractions;

namespace Cutover.Migrations.Lint;

/// <summary>Which files a lint run covers: *.sql under each directory (recursively) minus the exclude globs, plus files named directly.</summary>
internal static class MigrationFiles
{
    public static IReadOnlyList<string> Find(IEnumerable<string> pathsOrDirectories, IEnumerable<string> excludeGlobs)
    {
        var excludes = excludeGlobs.ToList();
        var files = new List<string>();
        foreach (var path in pathsOrDirectories)
        {
            if (File.Exists(path))
            {
                // Named explicitly: linted whatever its extension, unless a glob excludes its name.
                if (!IsExcluded(Path.GetFileName(path), excludes)) files.Add(path);
                continue;
            }
            if (!Directory.Exists(path)) throw new FileNotFoundException($"no such file or directory: {path}", path);
            var matcher = new Matcher(StringComparison.Ordinal);
            matcher.AddInclude("**/*.sql");
            matcher.AddExcludePatterns(excludes);
            var result = matcher.Execute(new DirectoryInfoWrapper(new DirectoryInfo(path)));
            files.AddRange(result.Files.Select(f => Path.Combine(path, f.Path)));
        }
        return files.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
    }

    private static bool IsExcluded(string name, List<string> excludes)
    {
        if (excludes.Count == 0) return false;
        var matcher = new Matcher(StringComparison.Ordinal);
        matcher.AddInclude("**/*");
        matcher.AddExcludePatterns(excludes);
        return !matcher.Match(name).HasMatches;
    }
}
