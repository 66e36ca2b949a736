namespace Cutover.Tests.Support;

/// <summary>Writes artifact directories for tests: the bundled hello-php app with a chosen VERSION.</summary>
public static class AppFactory
{
    public static string ExampleDir => Path.Combine(AppContext.BaseDirectory, "examples", "hello-php");

    /// <summary>Copies the example app into <paramref name="dir"/> (once) and sets its VERSION.</summary>
    public static string WriteHelloPhp(string dir, string version, bool unhealthy = false)
    {
        if (!Directory.Exists(dir)) CopyTree(ExampleDir, dir);
        File.WriteAllText(Path.Combine(dir, "VERSION"), version + "\n");
        var marker = Path.Combine(dir, "UNHEALTHY");
        if (unhealthy) File.WriteAllText(marker, "");
        else File.Delete(marker);
        return dir;
    }

    /// <summary>
    /// A release directory of examples/node-app under <paramref name="root"/>/releases, with a VERSION and,
    /// optionally, a BEHAVIOR that makes it misbehave (see server.js). Made once per version and behavior.
    /// </summary>
    public static string NodeRelease(string root, string version, string? behavior = null)
    {
        var dir = Path.Combine(root, "releases", version + behavior);
        if (Directory.Exists(dir)) return dir;
        CopyTree(Path.Combine(AppContext.BaseDirectory, "examples", "node-app"), dir);
        File.WriteAllText(Path.Combine(dir, "VERSION"), version);
        if (behavior is not null) File.WriteAllText(Path.Combine(dir, "BEHAVIOR"), behavior);
        return dir;
    }

    /// <summary>Copies every file below <paramref name="from"/> to the same place below <paramref name="to"/>, but those whose path relative to <paramref name="from"/> <paramref name="skip"/> says to leave out.</summary>
    public static void CopyTree(string from, string to, Func<string, bool>? skip = null)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            if (skip?.Invoke(relative) == true) continue;
            var target = Path.Combine(to, relative);
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target, overwrite: true);
        }
    }

    /// <summary>A small config file for <paramref name="root"/>; <paramref name="extra"/> is appended verbatim.</summary>
    public static string WriteConfig(string dir, string root, string extra = "", string app = "shop")
    {
        var path = Path.Combine(dir, "cutover.yml");
        File.WriteAllText(path, $"app: {app}\nstrategy: symlink\nroot: {root}\n{extra}");
        return path;
    }
}
