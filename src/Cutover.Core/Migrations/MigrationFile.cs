using System.Security.Cryptography;
using System.Text.RegularExpressions;

namespace Cutover.Migrations;

/// <summary>One migration: NNNN_name.sql. The checksum is of its bytes, so any edit after it was applied shows.</summary>
public sealed record MigrationFile(string Name, string Path, string Text, string Checksum)
{
    public static MigrationFile Read(string path) => FromBytes(System.IO.Path.GetFileName(path), path, File.ReadAllBytes(path));

    /// <summary>A migration sent from elsewhere (a fleet's first host gets them from the deployer): the same bytes, the same checksum.</summary>
    public static MigrationFile FromBytes(string name, string path, byte[] bytes) =>
        new(name, path, System.Text.Encoding.UTF8.GetString(bytes), Convert.ToHexStringLower(SHA256.HashData(bytes)));
}

/// <summary>The migrations directory: every NNNN_name.sql in it, in name order.</summary>
public static partial class MigrationDirectory
{
    [GeneratedRegex(@"^[0-9]+_[A-Za-z0-9_.\-]+\.sql$")]
    private static partial Regex FileName();

    public static IReadOnlyList<MigrationFile> Read(string dir)
    {
        if (!Directory.Exists(dir))
            throw new DeployException($"the migrations directory {dir} does not exist (migrations.dir)");
        var files = new List<MigrationFile>();
        foreach (var path in Directory.EnumerateFiles(dir, "*.sql").Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(path);
            if (!FileName().IsMatch(name))
                throw new DeployException($"{path}: a migration file must be named NNNN_name.sql (digits, underscore, name), so that name order is apply order");
            files.Add(MigrationFile.Read(path));
        }
        var clash = files.GroupBy(f => f.Name[..f.Name.IndexOf('_')]).FirstOrDefault(g => g.Count() > 1 && g.Select(f => f.Name).Distinct().Count() > 1);
        if (clash is not null)
            throw new DeployException($"{dir}: two migrations share the number {clash.Key} ({string.Join(", ", clash.Select(f => f.Name))}); their order would depend on their names alone");
        return files;
    }
}
