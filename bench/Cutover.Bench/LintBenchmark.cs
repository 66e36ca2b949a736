using System.Diagnostics;
using System.Globalization;
using System.Text;
using Cutover.Migrations.Lint;

namespace Cutover.Bench;

/// <summary>
/// Linting 2,000 migration files (50,000 statements, a realistic mix) with Cutover's MigrationLinter and with
/// squawk 2.66.0 (the native binary from npm's squawk-cli), same files, same run. Both write gcc-style findings.
/// Cutover is measured in-process (warm, LintPaths + report) and as a whole process (.NET start-up and JIT
/// included: the real `cutover migrations lint --format gcc DIR` command).
/// </summary>
public static class LintBenchmark
{
    private const int Files = 2000;
    private const int StatementsPerFile = 25;

    public static int Run(string[] args)
    {
        var runs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5;
        var repo = StagingBenchmark.FindRepo();
        var squawk = Path.Combine(repo, "bench", ".tools", "node_modules", "@squawk-cli", "linux-x64", "bin", "squawk");
        if (!File.Exists(squawk))
        {
            Console.Error.WriteLine($"squawk not found at {squawk}; run bench/run.sh (it installs squawk-cli@2.66.0 from npm)");
            return 2;
        }
        var work = Directory.CreateTempSubdirectory("cutover-lint-bench-").FullName;
        try
        {
            var report = RunIn(work, squawk, runs);
            Console.WriteLine(report);
            Directory.CreateDirectory(Path.Combine(repo, "bench", "results"));
            File.WriteAllText(Path.Combine(repo, "bench", "results", "lint.md"), report);
            StagingBenchmark.UpdateReadme(Path.Combine(repo, "bench", "README.md"), "lint", report);
            return 0;
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    /// <summary>The timed child process: lint every *.sql under <paramref name="dir"/>, gcc findings to stdout.</summary>
    public static int LintFiles(string dir)
    {
        var results = new MigrationLinter(new LintOptions()).LintPaths([dir]);
        using var stdout = new StreamWriter(Console.OpenStandardOutput(), new UTF8Encoding(false), 1 << 16);
        LintReport.Write(stdout, results, LintFormat.Gcc);
        return 0;
    }

    private static string RunIn(string work, string squawk, int runs)
    {
        var dir = Path.Combine(work, "migrations");
        var bytes = Generate(dir);
        var files = Directory.GetFiles(dir, "*.sql").Order(StringComparer.Ordinal).ToArray();
        Console.WriteLine($"generated {files.Length} files, {Files * StatementsPerFile} statements, {bytes / 1e6:0.0} MB in {dir}");
        var cli = Path.Combine(AppContext.BaseDirectory, "cutover.dll");
        var version = Measure.Capture(squawk, "--version").Trim();

        // Findings, once each, so the table can show both tools did real work.
        var linter = new MigrationLinter(new LintOptions());
        var cutoverFindings = linter.LintPaths([dir]).Sum(r => r.Findings.Count);
        var squawkFindings = CountLines(squawk, ["--reporter", "gcc", .. files]);

        var inProcess = new List<double>();
        var cutoverProcess = new List<Run>();
        var squawkProcess = new List<Run>();
        InProcess(linter, dir); // JIT warm-up
        for (var i = 0; i < runs; i++)
        {
            // Alternate who goes first so neither always gets the warmer cache.
            if (i % 2 == 0)
            {
                cutoverProcess.Add(Measure.CommandExiting([0, 1], "dotnet", cli, "migrations", "lint", "--format", "gcc", dir));
                squawkProcess.Add(Measure.CommandExiting([0, 1], squawk, ["--reporter", "gcc", .. files]));
            }
            else
            {
                squawkProcess.Add(Measure.CommandExiting([0, 1], squawk, ["--reporter", "gcc", .. files]));
                cutoverProcess.Add(Measure.CommandExiting([0, 1], "dotnet", cli, "migrations", "lint", "--format", "gcc", dir));
            }
            inProcess.Add(InProcess(linter, dir));
            Console.WriteLine($"run {i + 1}: cutover in-process {inProcess[^1]:0.000}s, whole process {cutoverProcess[^1].Seconds:0.000}s, squawk {squawkProcess[^1].Seconds:0.000}s");
        }

        var ip = Measure.Median(inProcess);
        var cp = Measure.Median(cutoverProcess.Select(r => r.Seconds));
        var sq = Measure.Median(squawkProcess.Select(r => r.Seconds));
        var cc = Measure.Median(cutoverProcess.Select(r => r.CpuSeconds));
        var sc = Measure.Median(squawkProcess.Select(r => r.CpuSeconds));
        var cm = Measure.Median(cutoverProcess.Select(r => (double)r.MaxRssKb));
        var sm = Measure.Median(squawkProcess.Select(r => (double)r.MaxRssKb));
        // Other work on the machine skews both tools; say how busy it was.
        var load = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
        var sb = new StringBuilder();
        sb.AppendLine($"Measured {DateTime.UtcNow:yyyy-MM-dd HH:mm}Z on {Environment.ProcessorCount} cores (1-minute load average {load} at the end), {files.Length} files, {Files * StatementsPerFile} statements, {bytes / 1e6:0.0} MB, median of {runs} runs, warm page cache; both write gcc-format findings; {version} (native binary from npm squawk-cli).");
        sb.AppendLine();
        sb.AppendLine("| what | Cutover | squawk | Cutover / squawk |");
        sb.AppendLine("|---|---|---|---|");
        sb.AppendLine($"| lint all files, whole process (start-up included) | {cp:0.000} s | {sq:0.000} s | {cp / sq:0.00} |");
        sb.AppendLine($"| CPU time (user + system), whole process | {cc:0.000} s | {sc:0.000} s | {cc / sc:0.00} |");
        sb.AppendLine($"| lint all files, Cutover in-process (MigrationLinter.LintPaths + report, warm) | {ip:0.000} s | {sq:0.000} s | {ip / sq:0.00} |");
        sb.AppendLine($"| peak memory (RSS), whole process | {cm / 1024:0.0} MiB | {sm / 1024:0.0} MiB | {cm / sm:0.00} |");
        sb.AppendLine($"| findings | {cutoverFindings} | {squawkFindings} | |");
        return sb.ToString();
    }

    private static double InProcess(MigrationLinter linter, string dir)
    {
        var clock = Stopwatch.StartNew();
        var results = linter.LintPaths([dir]);
        LintReport.Write(TextWriter.Null, results, LintFormat.Gcc);
        return clock.Elapsed.TotalSeconds;
    }

    private static int CountLines(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var count = 0;
        while (process.StandardOutput.ReadLine() is { } line)
            if (line.Contains(": warning:", StringComparison.Ordinal) || line.Contains(": error:", StringComparison.Ordinal)) count++;
        process.WaitForExit();
        _ = stderr.Result;
        return count;
    }

    /// <summary>
    /// Migrations as teams write them: a lock_timeout, comments, added columns and indexes, new tables, NOT VALID
    /// constraints and their validation, a DO block, a trigger function, backfills and inserts with tricky strings.
    /// </summary>
    public static long Generate(string dir)
    {
        Directory.CreateDirectory(dir);
        var random = new Random(42);
        long bytes = 0;
        var sb = new StringBuilder();
        for (var f = 0; f < Files; f++)
        {
            sb.Clear();
            sb.Append("-- migration ").Append(f).Append(": generated for the lint benchmark\n");
            sb.Append("SET lock_timeout = '2s';\n");
            for (var s = 1; s < StatementsPerFile; s++) sb.Append(Statement(random, f, s)).Append('\n');
            var path = Path.Combine(dir, $"{f:D5}_migration.sql");
            File.WriteAllText(path, sb.ToString());
            bytes += sb.Length;
        }
        return bytes;
    }

    private static string Statement(Random random, int f, int s)
    {
        var t = $"table_{f % 97}";
        var c = $"col_{f}_{s}";
        return random.Next(16) switch
        {
            0 => $"ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {c} text;",
            1 => $"-- backfill in batches later\nALTER TABLE {t} ADD COLUMN {c} integer NOT NULL DEFAULT 0;",
            2 => $"CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_{f}_{s} ON {t} ({c});",
            3 => $"CREATE INDEX idx_{f}_{s}_partial ON {t} (tenant_id, {c}) WHERE deleted_at IS NULL;",
            4 => $"CREATE TABLE IF NOT EXISTS new_{f}_{s} (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n  name text NOT NULL,\n  created_at timestamptz NOT NULL DEFAULT now(),\n  payload jsonb DEFAULT '{{}}'::jsonb,\n  owner_id bigint REFERENCES users (id)\n);",
            5 => $"DO $$\nBEGIN\n  IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = 'mood_{f}') THEN\n    CREATE TYPE mood_{f} AS ENUM ('sad', 'ok', 'happy');\n  END IF;\nEND\n$$;",
            6 => $"UPDATE {t} SET {c} = lower(name) WHERE id BETWEEN {s * 10000} AND {s * 10000 + 9999};",
            7 => $"ALTER TABLE {t} ADD CONSTRAINT fk_{f}_{s} FOREIGN KEY (owner_id) REFERENCES users (id) NOT VALID;",
            8 => $"ALTER TABLE {t} VALIDATE CONSTRAINT fk_{f}_{s};",
            9 => $"ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL;",
            10 => $"CREATE OR REPLACE FUNCTION touch_{f}_{s}() RETURNS trigger LANGUAGE plpgsql AS $fn$\nBEGIN\n  NEW.updated_at := now(); -- keep it fresh; really\n  RETURN NEW;\nEND\n$fn$;",
            11 => $"INSERT INTO settings (key, value) VALUES ('k_{f}_{s}', 'it''s; fine'), ('e_{f}', E'line\\nnext\\'s');",
            12 => $"/* {c}: /* nested */ still a comment; */\nALTER TABLE {t} ADD COLUMN {c} uuid DEFAULT gen_random_uuid();",
            13 => $"COMMENT ON COLUMN {t}.id IS 'the key; never reused';",
            14 => $"ALTER TABLE {t} ALTER COLUMN {c} TYPE bigint;",
            _ => $"DROP INDEX CONCURRENTLY IF EXISTS \"Old Index {f}_{s}\";",
        };
    }
}
