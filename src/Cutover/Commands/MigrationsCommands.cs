using System.CommandLine;
using Cutover.Config;
using Cutover.Migrations;
using Cutover.Migrations.Lint;
using Cutover.Migrations.Verify;
using Spectre.Console;

namespace Cutover.Cli.Commands;

/// <summary>`cutover migrations lint|status` and `cutover migrate`.</summary>
public static class MigrationsCommands
{
    public static Command Migrations(CommonOptions common, CliEnvironment env) =>
        new("migrations", "Check PostgreSQL migrations before they run: lint, verify on a real database, status")
        {
            Lint(common, env),
            Status(common, env),
        };

    private static Command Lint(CommonOptions common, CliEnvironment env)
    {
        var paths = new Argument<string[]>("paths") { Description = "Migration files or directories (default: migrations.dir from the config)", Arity = ArgumentArity.ZeroOrMore };
        var format = new Option<string>("--format") { Description = "human, json, github (workflow annotations) or gcc", DefaultValueFactory = _ => "human" };
        format.AcceptOnlyFromAmong("human", "json", "github", "gcc");
        var pgVersion = new Option<int?>("--pg-version") { Description = "The PostgreSQL major version the migrations run on (default: migrations.pg_version, else 15)" };
        var exclude = new Option<string[]>("--exclude") { Description = "A rule id to skip (repeatable)", AllowMultipleArgumentsPerToken = true };
        var verify = new Option<string?>("--verify") { Description = "Run each statement on this database (URL or key=value) in a rolled-back transaction and report the locks it took and whether it rewrote a table; use a scratch copy" };
        var command = new Command("lint", "Lint PostgreSQL migrations for changes that break the running version or block traffic") { paths, format, pgVersion, exclude, verify };
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var given = parse.GetValue(paths) ?? [];
            var configFiles = common.ConfigFiles(parse);
            var configPath = string.Join(" + ", configFiles);
            MigrationsConfig? config = null;
            if (given.Length == 0 || configFiles.Any(File.Exists))
            {
                config = ConfigLoader.Load(configFiles, resolveEnvironment: false).Migrations;
                if (given.Length == 0 && config is null)
                    throw new UsageException($"give migration files or directories, or a 'migrations' section with 'dir' in {configPath}");
            }
            var options = config is null ? new LintOptions() : MigrationPhase.LintOptionsFor(config);
            var excluded = parse.GetValue(exclude) ?? [];
            foreach (var rule in excluded.Where(r => !RuleIds.All.Contains(r)))
                throw new UsageException($"--exclude: '{rule}' is not a rule id; rules: {string.Join(", ", RuleIds.All)}");
            options = options with
            {
                PgVersion = parse.GetValue(pgVersion) ?? options.PgVersion,
                ExcludedRules = options.ExcludedRules.Concat(excluded).ToHashSet(StringComparer.Ordinal),
            };
            var targets = given.Length > 0 ? given : [config!.Dir];
            foreach (var target in targets.Where(t => !File.Exists(t) && !Directory.Exists(t)))
                throw new UsageException($"{target}: no such file or directory");
            var results = new MigrationLinter(options).LintPaths(targets, config is null ? [] : MigrationPhase.ExcludedPaths(config));

            if (parse.GetValue(verify) is { } url)
            {
                var files = results.Select(r => MigrationFile.Read(r.File)).ToList();
                var facts = await new MigrationVerifier(DatabaseUrl.ToConnectionString(url)).VerifyAsync(files, ct);
                results = VerifiedLint.Apply(results, facts);
            }
            var chosen = parse.GetValue(format) switch { "json" => LintFormat.Json, "github" => LintFormat.GitHub, "gcc" => LintFormat.Gcc, _ => LintFormat.Human };
            LintReport.Write(env.Out, results, chosen);
            return results.Any(r => r.Findings.Any(f => f.Severity == Severity.Error)) ? ExitCodes.Failed : ExitCodes.Ok;
        }));
        return command;
    }

    private static Command Status(CommonOptions common, CliEnvironment env)
    {
        var command = new Command("status", "Which migrations are applied (when, by whom, how long) and which are pending") { common.Json };
        command.SetAction((parse, ct) =>
        {
            var json = parse.GetValue(common.Json);
            return CommandRunner.RunAsync(env, json, async () =>
            {
                var phase = PhaseFor(common.LoadConfig(parse));
                var rows = await new MigrationRunner(phase.ConnectionString(), MigrationRunOptions.From(phase.Config), _ => { }).StatusAsync(phase.Files(), ct);
                if (json)
                {
                    env.Out.WriteLine(System.Text.Json.JsonSerializer.Serialize(rows.Select(r => new
                    {
                        name = r.File.Name,
                        status = r.Applied is null ? "pending" : r.Applied.Checksum == r.File.Checksum ? "applied" : "changed",
                        applied_at = r.Applied?.AppliedAt,
                        applied_by = r.Applied?.AppliedBy,
                        duration_ms = r.Applied?.DurationMs,
                    }), Json.Options));
                    return ExitCodes.Ok;
                }
                var table = new Table().Border(env.Interactive ? TableBorder.Rounded : TableBorder.None).AddColumns("migration", "status", "applied (UTC)", "by", "took");
                foreach (var (file, applied) in rows)
                {
                    var status = applied is null ? "[yellow]pending[/]" : applied.Checksum == file.Checksum ? "[green]applied[/]" : "[red]changed since applied[/]";
                    table.AddRow(Markup.Escape(file.Name), status, applied?.AppliedAt.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss") ?? "", Markup.Escape(applied?.AppliedBy ?? ""),
                        applied is null ? "" : $"{applied.DurationMs} ms");
                }
                env.Console.Write(table);
                return ExitCodes.Ok;
            });
        });
        return command;
    }

    public static Command Migrate(CommonOptions common, CliEnvironment env)
    {
        var command = new Command("migrate", "Lint, then apply pending migrations in order, once, with lock_timeout and retries");
        command.SetAction((parse, ct) => CommandRunner.RunAsync(env, false, async () =>
        {
            var phase = PhaseFor(common.LoadConfig(parse));
            if (phase.Config.Lint != MigrationLintLevel.Off)
            {
                var lint = phase.Lint();
                if (lint.Findings.Any()) LintReport.Write(env.Error, lint.Results.Where(r => r.Findings.Count > 0).ToList(), LintFormat.Human);
                if (phase.Config.Lint == MigrationLintLevel.Error && lint.Errors > 0)
                {
                    env.Error.WriteLine($"error: {lint.Errors} error-level findings; nothing was applied (migrations.lint: error)");
                    return ExitCodes.Failed;
                }
            }
            var result = await phase.RunAsync($"{Environment.UserName}@{Environment.MachineName}", line => env.Out.WriteLine(line), ct);
            if (result.Error is not null)
            {
                env.Error.WriteLine($"error: {result.Error}");
                return ExitCodes.Failed;
            }
            env.Out.WriteLine(result.Applied.Count == 0
                ? $"nothing to apply: {result.AlreadyApplied.Count} migrations already applied"
                : $"applied {result.Applied.Count} migrations; {result.AlreadyApplied.Count} were already applied");
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static MigrationPhase PhaseFor(CutoverConfig config) =>
        config.Migrations is { } migrations
            ? new MigrationPhase(migrations, Environment.GetEnvironmentVariable)
            : throw new UsageException($"{config.File} has no 'migrations' section (dir, database_url_env, ...)");
}
