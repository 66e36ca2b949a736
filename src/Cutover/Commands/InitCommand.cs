using System.CommandLine;
using System.Reflection;
using Cutover.Config;
using Cutover.Init;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover init`: the stack in the config file's directory (StackDetector) drafted as a commented cutover.yml,
/// checked with the config reader before it is written, so init never writes a file deploy refuses.
/// </summary>
public static class InitCommand
{
    public static Command Create(CommonOptions common, CliEnvironment env)
    {
        var force = new Option<bool>("--force") { Description = "Overwrite an existing config file" };
        var root = new Option<string?>("--root") { Description = "The deploy root to write into the config (default /var/www/<app>)" };
        var from = new Option<string?>("--from") { Description = "Import this kind of file instead of detecting: pm2, compose or kamal (the FILE argument names it)" };
        from.AcceptOnlyFromAmong("pm2", "compose", "kamal");
        var file = new Argument<string?>("file") { Description = "With --from: the ecosystem, compose or Kamal deploy.yml file", Arity = ArgumentArity.ZeroOrOne };
        var strategy = new Option<string?>("--strategy") { Description = "Use this strategy instead of the one recommended for the stack" };
        strategy.AcceptOnlyFromAmong([.. StrategyOverride.Names]);
        var print = new Option<bool>("--print") { Description = "Write the config to standard output instead of the file (what was detected goes to stderr)" };
        var pmEnv = new Option<string>("--env") { Description = "PM2: the env_NAME block merged over env (as `pm2 start --env NAME`)", DefaultValueFactory = _ => "production" };
        var command = new Command("init", "Detect the app in this directory (Node, PM2, PHP/Laravel, .NET, Compose, Kamal, static) and write a commented cutover.yml that deploys it")
        {
            force, root, from, file, strategy, print, pmEnv,
        };
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var path = Path.GetFullPath(common.SingleConfigFile(parse, "init"));
            var toStdout = parse.GetValue(print);
            if (toStdout && parse.GetValue(force)) throw new UsageException("--print writes nothing, so --force has nothing to overwrite; give one of them");
            if (!toStdout && File.Exists(path) && !parse.GetValue(force))
                throw new UsageException($"{path} already exists; pass --force to overwrite it (or --print to see what init would write)");
            var dir = Path.GetDirectoryName(path)!;
            if (!Directory.Exists(dir)) throw new UsageException($"{dir} does not exist");
            var envName = parse.GetValue(pmEnv)!;
            if (envName.Length == 0 || !envName.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
                throw new UsageException($"--env '{envName}' is not a PM2 env name (letters, digits, _ and -)");
            var request = new InitRequest { Directory = dir, Root = parse.GetValue(root), PmEnv = envName };
            var report = toStdout ? env.Error : env.Out;

            InitPlan? plan;
            try
            {
                plan = await Plan(request, parse.GetValue(from), parse.GetValue(file), report, ct);
                if (plan is not null && parse.GetValue(strategy) is { } chosen) plan = StrategyOverride.Apply(plan, chosen);
            }
            catch (InitException e) when (e.Environment) { throw new DeployException(e.Message); }
            catch (InitException e) { throw new UsageException(e.Message); }

            // Nothing accepted and ignored: --env means a PM2 env block, so without an ecosystem file it is refused.
            if (parse.GetResult(pmEnv) is { Implicit: false } && plan?.Stack != "pm2")
                throw new UsageException($"--env chooses a PM2 env_NAME block, and {(plan is null ? "nothing" : $"{plan.Stack} ({plan.Evidence})")} was detected here, not an ecosystem file");

            string text;
            if (plan is null)
            {
                if (parse.GetValue(strategy) is { } chosen && chosen != "symlink")
                    throw new UsageException($"--strategy {chosen}: nothing in {dir} says what to run (no package.json, ecosystem file, *.csproj, compose file or config/deploy.yml)");
                var app = StackDetector.DirectoryApp(dir);
                text = Template().Replace("{{app}}", app).Replace("{{root}}", request.Root ?? $"/var/www/{app}").Replace("{{build_hint}}", "                       # e.g. [\"make\"]");
                report.WriteLine($"no known stack in {dir} (looked for: {string.Join(", ", StackDetector.Precedence)}); writing the generic symlink config");
            }
            else
            {
                text = plan.Draft.Render();
                Check(text, path);
            }

            if (toStdout) env.Out.Write(text);
            else
            {
                Cutover.Platform.AtomicFile.WriteAllText(path, text);
                report.WriteLine($"wrote {path}; check root{(plan?.Strategy is "rolling" or "blue-green" ? " and proxy.listen" : "")}, then `cutover config` and `cutover deploy <dir>`");
            }
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static async Task<InitPlan?> Plan(InitRequest request, string? from, string? file, TextWriter report, CancellationToken ct)
    {
        if (from is not null)
        {
            if (file is null) throw new UsageException($"--from {from} needs the file to import: cutover init --from {from} FILE");
            var full = Path.GetFullPath(file);
            if (!File.Exists(full)) throw new UsageException($"--from {from}: {file} does not exist");
            report.WriteLine($"importing {file} as {from}");
            var imported = await StackDetector.PlanForAsync(request, from, full, ct);
            report.WriteLine($"strategy: {imported.Strategy}: {imported.StrategyReason}");
            Describe(imported, report);
            return imported;
        }
        if (file is not null) throw new UsageException($"a file ({file}) is read only with --from pm2|compose|kamal");

        var found = StackDetector.Detect(request.Directory);
        if (found.Count == 0) return null;
        var plan = await StackDetector.PlanForAsync(request, found[0].Stack, Path.Combine(request.Directory, found[0].Evidence), ct);
        report.WriteLine($"detected: {plan.Stack} ({plan.Evidence})");
        if (found.Count > 1)
            report.WriteLine($"also found: {string.Join(", ", found.Skip(1).Select(f => $"{f.Stack} ({f.Evidence})"))}; {plan.Stack} wins " +
                             $"(precedence: {string.Join(" > ", StackDetector.Precedence)}; --from imports another file)");
        report.WriteLine($"strategy: {plan.Strategy}: {plan.StrategyReason}");
        Describe(plan, report);
        return plan;
    }

    private static void Describe(InitPlan plan, TextWriter report)
    {
        foreach (var note in plan.Notes) report.WriteLine(note);
        if (plan.Unmapped.Count > 0)
            report.WriteLine($"{plan.Unmapped.Count} field(s) with no Cutover equivalent are listed in a comment at the end of the file: {string.Join("; ", plan.Unmapped)}");
    }

    /// <summary>The draft read back by the config reader; ${VAR} references are given a stand-in, since init does not have the deploy's secrets.</summary>
    private static void Check(string text, string path)
    {
        try
        {
            ConfigLoader.Parse(text, path, _ => "set-at-deploy");
        }
        catch (ConfigException e)
        {
            throw new DeployException($"init drafted a config the reader refuses (a bug in init; nothing was written): {string.Join("; ", e.Errors)}");
        }
    }

    internal static string Template()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Templates/cutover.yml")
                           ?? throw new InvalidOperationException("the cutover.yml template is missing from the build");
        return new StreamReader(stream).ReadToEnd();
    }
}
