using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Cutover.Init;

/// <summary>
/// A PM2 ecosystem file (ecosystem.config.js/.cjs/.json) as a cutover.yml: the first app is `run:`, every other app
/// a process type under `processes:`. Code files are evaluated by the machine's `node` (the file is code, and only
/// node knows what it exports); fields with no Cutover equivalent are listed, never dropped.
/// </summary>
public static class Pm2Import
{
    /// <summary>Fields this import maps (env_NAME separately); every other field of an app is reported.</summary>
    private static readonly HashSet<string> Mapped = new(StringComparer.Ordinal)
    {
        "name", "script", "args", "interpreter", "instances", "wait_ready", "listen_timeout", "kill_timeout",
        "max_memory_restart", "env", "min_uptime", "max_restarts",
    };

    public static async Task<InitPlan> PlanAsync(InitRequest request, string file, string evidence, CancellationToken ct)
    {
        var json = file.EndsWith(".json", StringComparison.Ordinal) ? File.ReadAllText(file) : await EvaluateAsync(file, request.NodeTimeout, ct);
        JsonElement root;
        try { root = JsonDocument.Parse(json).RootElement; }
        catch (JsonException e) { throw new InitException($"{evidence} is not valid JSON: {e.Message}"); }
        var apps = root.ValueKind == JsonValueKind.Array ? root
            : root.ValueKind == JsonValueKind.Object && root.TryGetProperty("apps", out var a) ? a
            : default;
        if (apps.ValueKind == JsonValueKind.Object) apps = JsonDocument.Parse($"[{apps.GetRawText()}]").RootElement;
        if (apps.ValueKind != JsonValueKind.Array || apps.GetArrayLength() == 0)
            throw new InitException($"{evidence} exports no apps (expected module.exports = {{ apps: [ ... ] }})");

        var dir = request.Directory;
        var first = apps[0];
        var app = Text(first, "name") is { } name ? StackDetector.SafeName(name) : StackDetector.DirectoryApp(dir);
        var unmapped = new List<string>();
        var waitReady = Bool(first, "wait_ready");
        var (ready, path, _) = waitReady ? ("message", null, "") : StackDetector.NodeReadiness(dir);
        var draft = StackDetector.Start(request, app, "pm2", evidence, "rolling",
            "PM2's reload is a rolling restart; Cutover's rolling strategy does it with readiness and drain");
        var run = StackDetector.Instances(draft, Command(first, evidence), "PORT", ready, path);
        MapApp(first, run, request.PmEnv, unmapped, $"apps[0] ({Text(first, "name") ?? "unnamed"})", isWeb: true);
        if (File.Exists(Path.Combine(dir, "package.json"))) StackDetector.BuildHooks(draft, [StackDetector.NodeInstall(dir)]);

        for (var i = 1; i < apps.GetArrayLength(); i++)
        {
            var other = apps[i];
            var processes = draft.Map("processes", "The other apps of the ecosystem file: process types, no port, no proxy.");
            var typeName = ProcessTypeName(Text(other, "name") ?? $"app{i}", processes);
            var type = processes.Map(typeName);
            type.Set("command", Command(other, evidence));
            MapApp(other, type, request.PmEnv, unmapped, $"apps[{i}] ({Text(other, "name") ?? "unnamed"})", isWeb: false);
        }
        if (unmapped.Count > 0)
        {
            draft.Footer.Add($"Not mapped from {evidence} (no Cutover equivalent; review by hand):");
            draft.Footer.AddRange(unmapped.Select(u => "  " + u));
        }
        return new InitPlan
        {
            Stack = "pm2", Evidence = evidence, Strategy = "rolling", Draft = draft, Unmapped = unmapped,
            StrategyReason = "PM2 apps are long-running servers; rolling replaces them one at a time with readiness and drain",
            Notes = [$"{apps.GetArrayLength()} app(s); env from env and env_{request.PmEnv}"],
        };
    }

    /// <summary>One app's fields into <paramref name="target"/> (`run:` or a process type's mapping).</summary>
    private static void MapApp(JsonElement app, ConfigDraft target, string envName, List<string> unmapped, string label, bool isWeb)
    {
        if (app.TryGetProperty("instances", out var instances))
        {
            // PM2: 'max' and 0 mean one per CPU, -1 one fewer; Cutover's run.instances takes a number or max.
            var text = instances.ValueKind == JsonValueKind.Number ? instances.GetRawText() : instances.ToString();
            // A process type's instances is a number only.
            if (text is "max" or "0" && isWeb) target.Set("instances", new RawScalar("max"), "one per CPU, as PM2's 'max'");
            else if (int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count > 0) target.Set("instances", new RawScalar(text));
            else unmapped.Add($"{label}: instances: {text} ({(isWeb ? "run.instances takes a number or max" : "a process type takes a number")})");
        }
        else if (isWeb) target.Set("instances", new RawScalar("1"), "PM2's default; 2 or more keeps serving while one is replaced");
        if (Bool(app, "wait_ready")) target.Set("ready", "message", "wait_ready: the app calls process.send('ready')");
        if (Millis(app, "listen_timeout") is { } listen && (isWeb || Bool(app, "wait_ready"))) target.Set("ready_timeout", listen, "listen_timeout");
        if (Millis(app, "kill_timeout") is { } kill) target.Set("kill_timeout", kill, "kill_timeout (PM2 sends SIGINT, then SIGKILL)");
        if (Text(app, "max_memory_restart") is { } memory) target.Set("max_memory", memory.ToUpperInvariant(), "max_memory_restart");
        var minUptime = Millis(app, "min_uptime");
        var maxRestarts = app.TryGetProperty("max_restarts", out var mr) ? mr.ToString() : null;
        if (minUptime is not null || maxRestarts is not null)
        {
            var restart = target.Map("restart");
            if (minUptime is not null) restart.Set("min_uptime", minUptime, "min_uptime");
            if (maxRestarts is not null) restart.Set("max_restarts", new RawScalar(maxRestarts), "max_restarts");
        }
        var env = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var block in new[] { "env", $"env_{envName}" })
            if (app.TryGetProperty(block, out var vars) && vars.ValueKind == JsonValueKind.Object)
                foreach (var v in vars.EnumerateObject())
                    env[v.Name] = v.Value.ValueKind == JsonValueKind.String ? v.Value.GetString()! : v.Value.GetRawText();
        if (env.Count > 0)
        {
            if (isWeb)
            {
                var map = target.Map("env");
                foreach (var (k, v) in env) map.Set(k, v);
            }
            else unmapped.Add($"{label}: env {string.Join(", ", env.Keys)} (every process type gets run.env; move what it needs there)");
        }
        foreach (var field in app.EnumerateObject())
        {
            if (Mapped.Contains(field.Name) || field.Name == $"env_{envName}") continue;
            var hint = field.Name.StartsWith("env_", StringComparison.Ordinal) ? $" (not chosen; --env {field.Name[4..]} takes it)" : "";
            unmapped.Add($"{label}: {field.Name}: {Show(field.Value)}{hint}");
        }
    }

    private static string Show(JsonElement value)
    {
        var raw = value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();
        raw = raw.Replace('\n', ' ');
        return raw.Length <= 60 ? raw : raw[..60] + "...";
    }

    /// <summary>script (+ interpreter, + args) as one shell command, the way PM2 starts it.</summary>
    private static string Command(JsonElement app, string evidence)
    {
        var script = Text(app, "script") ?? throw new InitException($"{evidence}: app '{Text(app, "name") ?? "?"}' has no script");
        var args = app.TryGetProperty("args", out var a)
            ? a.ValueKind == JsonValueKind.Array ? string.Join(' ', a.EnumerateArray().Select(x => Quote(x.ToString()))) : a.ToString()
            : "";
        var interpreter = Text(app, "interpreter");
        var head = interpreter is { Length: > 0 } and not "none" ? $"{interpreter} {script}"
            : interpreter is null && script.EndsWith(".js", StringComparison.Ordinal) || script.EndsWith(".cjs", StringComparison.Ordinal) || script.EndsWith(".mjs", StringComparison.Ordinal) ? $"node {script}"
            : script;
        return args.Length == 0 ? head : $"{head} {args}";
    }

    private static string Quote(string word) => word.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:@".Contains(c)) ? word : "'" + word.Replace("'", "'\\''") + "'";

    private static string ProcessTypeName(string name, ConfigDraft processes)
    {
        var safe = new string(name.ToLowerInvariant().Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '-').ToArray()).Trim('-');
        if (safe.Length == 0 || !char.IsAsciiLetter(safe[0])) safe = "p-" + safe;
        if (safe == "web") safe = "web-2";
        var unique = safe;
        for (var n = 2; processes[unique] is not null; n++) unique = $"{safe}-{n}";
        return unique;
    }

    private static string? Text(JsonElement app, string field) =>
        app.TryGetProperty(field, out var v) && v.ValueKind is JsonValueKind.String or JsonValueKind.Number ? v.ToString() : null;

    private static bool Bool(JsonElement app, string field) => app.TryGetProperty(field, out var v) && v.ValueKind == JsonValueKind.True;

    /// <summary>PM2 durations are milliseconds (a number) or a string with a unit; Cutover's need the unit.</summary>
    private static string? Millis(JsonElement app, string field)
    {
        if (!app.TryGetProperty(field, out var v)) return null;
        var text = v.ValueKind is JsonValueKind.Number or JsonValueKind.String ? v.ToString() : null;
        return text is not null && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms)
            ? Config.Duration.Format(TimeSpan.FromMilliseconds(ms))
            : text;
    }

    /// <summary>
    /// The ecosystem file evaluated by `node -e`: required (so module.exports, functions and all), printed as JSON.
    /// Bounded by <paramref name="timeout"/>; the child is killed when it runs over or the command is cancelled.
    /// </summary>
    public static async Task<string> EvaluateAsync(string file, TimeSpan timeout, CancellationToken ct)
    {
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Path.GetDirectoryName(file)! };
        start.ArgumentList.Add("-e");
        start.ArgumentList.Add("const m = require(process.argv[1]); process.stdout.write(JSON.stringify(m && m.default ? m.default : m))");
        start.ArgumentList.Add(Path.GetFullPath(file));
        Process process;
        try { process = Process.Start(start)!; }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new InitException($"{Path.GetFileName(file)} is JavaScript and `node` is not on PATH to evaluate it; install node, or export it as ecosystem.config.json", environment: true);
        }
        using (process)
        {
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(timeout);
            var stdout = process.StandardOutput.ReadToEndAsync(deadline.Token);
            var stderr = process.StandardError.ReadToEndAsync(deadline.Token);
            try { await process.WaitForExitAsync(deadline.Token); }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                ct.ThrowIfCancellationRequested();
                throw new InitException($"node did not finish evaluating {Path.GetFileName(file)} within {Config.Duration.Format(timeout)}", environment: true);
            }
            var error = (await stderr).Trim();
            if (process.ExitCode != 0)
                throw new InitException($"node could not evaluate {Path.GetFileName(file)}: {error.Split('\n').FirstOrDefault(l => l.Contains("Error", StringComparison.Ordinal)) ?? error.Split('\n')[0]}");
            return await stdout;
        }
    }
}
