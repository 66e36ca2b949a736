using System.CommandLine;
using System.Reflection;

namespace Cutover.Cli.Commands;

public static class InitCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var force = new Option<bool>("--force") { Description = "Overwrite an existing config file" };
        var root = new Option<string?>("--root") { Description = "The deploy root to write into the config (default /var/www/<app>)" };
        var command = new Command("init", "Write a commented cutover.yml for the app in this directory") { force, root };
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, () =>
        {
            var path = Path.GetFullPath(common.SingleConfigFile(parse, "init"));
            if (File.Exists(path) && !parse.GetValue(force))
                throw new UsageException($"{path} already exists; pass --force to overwrite it");
            var dir = Path.GetDirectoryName(path)!;
            var app = SafeName(new DirectoryInfo(dir).Name);
            var hasComposer = File.Exists(Path.Combine(dir, "composer.json"));
            var hasPackageJson = File.Exists(Path.Combine(dir, "package.json"));
            var buildHint = hasComposer ? "                       # e.g. [\"composer install --no-dev --optimize-autoloader --no-interaction\"]"
                : hasPackageJson ? "                       # e.g. [\"npm ci --omit=dev\"]"
                : "                       # e.g. [\"make\"]";
            var text = Template()
                .Replace("{{app}}", app)
                .Replace("{{root}}", parse.GetValue(root) ?? $"/var/www/{app}")
                .Replace("{{build_hint}}", buildHint);
            File.WriteAllText(path, text);
            env.Out.WriteLine($"wrote {path}; edit root and shared paths, then run `cutover deploy <dir>`");
            return Task.FromResult(ExitCodes.Ok);
        }));
        return command;
    }

    internal static string Template()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Templates/cutover.yml")
                           ?? throw new InvalidOperationException("the cutover.yml template is missing from the build");
        return new StreamReader(stream).ReadToEnd();
    }

    private static string SafeName(string name)
    {
        var safe = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-').ToArray()).Trim('-', '.');
        return safe.Length == 0 ? "app" : safe;
    }
}
