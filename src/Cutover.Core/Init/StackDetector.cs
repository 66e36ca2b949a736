using System.Text.Json;
using System.Text.RegularExpressions;
using System.Xml.Linq;

namespace Cutover.Init;

/// <summary>What `cutover init` is asked: the project directory, and the choices given on its command line.</summary>
public sealed record InitRequest
{
    public required string Directory { get; init; }
    /// <summary>--root; default /var/www/&lt;app&gt;.</summary>
    public string? Root { get; init; }
    /// <summary>--env NAME: PM2's env_NAME block (production by default, as the classic guide deploys).</summary>
    public string PmEnv { get; init; } = "production";
    /// <summary>How long `node` may take to evaluate an ecosystem file.</summary>
    public TimeSpan NodeTimeout { get; init; } = TimeSpan.FromSeconds(15);
}

/// <summary>
/// Recognises the stack in a project directory and drafts the cutover.yml that deploys it as it is. When several
/// stacks match, the first in <see cref="Precedence"/> wins: a file that already says how the app is deployed
/// (Kamal, Compose, a PM2 ecosystem) beats a project manifest, PHP beats Node (Laravel apps carry a package.json for
/// their assets), and a static site is the fallback.
/// </summary>
public static partial class StackDetector
{
    public static readonly IReadOnlyList<string> Precedence = ["kamal", "compose", "pm2", "laravel", "php", "dotnet", "node", "static"];

    private static readonly string[] ComposeFiles = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];
    private static readonly string[] EcosystemFiles = ["ecosystem.config.js", "ecosystem.config.cjs", "ecosystem.config.json"];

    /// <summary>Every stack found in <paramref name="dir"/>, in precedence order, with the file that shows it.</summary>
    public static IReadOnlyList<(string Stack, string Evidence)> Detect(string dir)
    {
        var found = new List<(string, string)>();
        if (File.Exists(Path.Combine(dir, "config", "deploy.yml"))) found.Add(("kamal", "config/deploy.yml"));
        if (ComposeFiles.FirstOrDefault(f => File.Exists(Path.Combine(dir, f))) is { } compose) found.Add(("compose", compose));
        if (EcosystemFiles.FirstOrDefault(f => File.Exists(Path.Combine(dir, f))) is { } ecosystem) found.Add(("pm2", ecosystem));
        if (File.Exists(Path.Combine(dir, "artisan"))) found.Add(("laravel", "artisan"));
        else if (File.Exists(Path.Combine(dir, "composer.json"))) found.Add(("php", "composer.json"));
        if (WebProject(dir) is { } csproj) found.Add(("dotnet", Path.GetFileName(csproj)));
        if (File.Exists(Path.Combine(dir, "package.json"))) found.Add(("node", "package.json"));
        if (StaticIndex(dir) is { } index) found.Add(("static", index));
        return found;
    }

    /// <summary>The plan for the stack that wins in <paramref name="request"/>'s directory; null when nothing is recognised.</summary>
    public static async Task<InitPlan?> PlanAsync(InitRequest request, CancellationToken ct)
    {
        var found = Detect(request.Directory);
        if (found.Count == 0) return null;
        var (stack, evidence) = found[0];
        return await PlanForAsync(request, stack, Path.Combine(request.Directory, evidence), ct);
    }

    /// <summary>`--from pm2|compose|kamal FILE`, or the detected stack with its file.</summary>
    public static async Task<InitPlan> PlanForAsync(InitRequest request, string stack, string file, CancellationToken ct)
    {
        var dir = request.Directory;
        var evidence = Path.GetRelativePath(dir, file);
        return stack switch
        {
            "kamal" => KamalImport.Plan(request, file, evidence),
            "compose" => ComposeImport.Plan(request, file, evidence),
            "pm2" => await Pm2Import.PlanAsync(request, file, evidence, ct),
            "laravel" or "php" => Php(request, stack, evidence),
            "dotnet" => DotNet(request, file, evidence),
            "node" => Node(request, evidence),
            "static" => Static(request, evidence),
            _ => throw new ArgumentException($"unknown stack {stack}", nameof(stack)),
        };
    }

    // ---- shared pieces ----

    public static string SafeName(string name)
    {
        var safe = new string(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-' ? c : '-').ToArray()).Trim('-', '.');
        return safe.Length == 0 ? "app" : safe;
    }

    public static string DirectoryApp(string dir) => SafeName(new DirectoryInfo(dir).Name);

    internal static ConfigDraft Start(InitRequest request, string app, string stack, string evidence, string strategy, string why)
    {
        var draft = new ConfigDraft();
        draft.Header.Add($"cutover.yml for {app}, written by `cutover init` from {evidence} ({stack}). Docs: README.md");
        draft.Header.Add($"strategy: {strategy} because {why}.");
        draft.Header.Add("Check root (and proxy.listen), then `cutover config` shows every value with where it came from.");
        draft.Header.Add("");
        draft.Set("app", app);
        draft.Set("strategy", strategy);
        draft.Set("root", request.Root ?? $"/var/www/{app}", "releases/, shared/, current and .cutover/ live here");
        return draft;
    }

    /// <summary>run/proxy/health for an app Cutover's agent runs behind its proxy.</summary>
    internal static ConfigDraft Instances(ConfigDraft draft, string command, string portEnv, string ready, string? healthPath, string listen = "0.0.0.0:3000")
    {
        var run = draft.Map("run", "How each instance starts; Cutover gives it a free port in $" + portEnv + ".");
        run.Set("command", command);
        run.Set("instances", new RawScalar("2"), "replaced one at a time, so one always serves");
        run.Set("port_env", portEnv);
        run.Set("ready", ready, ready == "message" ? "the app calls process.send('ready')" : ready == "http" ? "health.path answers 2xx" : null);
        draft.Map("proxy", "Cutover's proxy: what clients (or your nginx) connect to.").Set("listen", listen);
        if (ready == "http" && healthPath is not null) draft.Map("health").Set("path", healthPath, "each new instance must answer here before it gets traffic");
        return run;
    }

    internal static void BuildHooks(ConfigDraft draft, IReadOnlyList<string> build, IReadOnlyList<string>? beforeSwitch = null)
    {
        var hooks = draft.Map("hooks", "Run inside the new release directory; a failure stops the deploy before anything switches.");
        hooks.Set("build", build);
        if (beforeSwitch is { Count: > 0 }) hooks.Set("before_switch", beforeSwitch);
    }

    /// <summary>Source files of the app (not dependencies), for the greps that find readiness calls and health routes.</summary>
    private static IEnumerable<string> SourceFiles(string dir, params string[] extensions)
    {
        var skip = new HashSet<string>(["node_modules", "vendor", ".git", "bin", "obj", "out", "dist"], StringComparer.Ordinal);
        var pending = new Stack<(string Dir, int Depth)>([(dir, 0)]);
        var seen = 0;
        while (pending.Count > 0 && seen < 2000)
        {
            var (current, depth) = pending.Pop();
            IEnumerable<string> entries;
            try { entries = Directory.EnumerateFileSystemEntries(current).ToList(); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            foreach (var entry in entries)
            {
                seen++;
                if (Directory.Exists(entry))
                {
                    if (depth < 4 && !skip.Contains(Path.GetFileName(entry)) && !new FileInfo(entry).Attributes.HasFlag(FileAttributes.ReparsePoint))
                        pending.Push((entry, depth + 1));
                }
                else if (extensions.Any(x => entry.EndsWith(x, StringComparison.Ordinal)) && new FileInfo(entry).Length < 1_000_000)
                    yield return entry;
            }
        }
    }

    private static string? FirstMatch(string dir, Regex pattern, params string[] extensions)
    {
        foreach (var file in SourceFiles(dir, extensions))
            if (pattern.Match(File.ReadAllText(file)) is { Success: true } m) return m.Groups.Count > 1 ? m.Groups[1].Value : m.Value;
        return null;
    }

    [GeneratedRegex(@"GetEnvironmentVariable\(\s*""PORT""\s*\)")]
    private static partial Regex ReadsPort();

    [GeneratedRegex(@"process\.send\s*\(\s*['""`]ready['""`]")]
    private static partial Regex ReadyMessage();

    // A route that looks like a health check, in Express/Fastify/Koa/ASP.NET style.
    [GeneratedRegex(@"['""](/(?:healthz?|up|ping|status|ready))['""]")]
    private static partial Regex HealthRoute();

    /// <summary>Readiness for a Node app: message when the code sends 'ready', else http on a health route or /.</summary>
    internal static (string Ready, string? Path, string Why) NodeReadiness(string dir)
    {
        if (FirstMatch(dir, ReadyMessage(), ".js", ".cjs", ".mjs", ".ts") is not null) return ("message", null, "the code calls process.send('ready')");
        var path = FirstMatch(dir, HealthRoute(), ".js", ".cjs", ".mjs", ".ts");
        return ("http", path ?? "/", path is null ? "no health route found, so /" : $"the code has a {path} route");
    }

    /// <summary>The build hook for the lockfile's package manager.</summary>
    internal static string NodeInstall(string dir) =>
        File.Exists(Path.Combine(dir, "pnpm-lock.yaml")) ? "pnpm install --prod --frozen-lockfile"
        : File.Exists(Path.Combine(dir, "yarn.lock")) ? "yarn install --production --frozen-lockfile"
        : File.Exists(Path.Combine(dir, "package-lock.json")) || File.Exists(Path.Combine(dir, "npm-shrinkwrap.json")) ? "npm ci --omit=dev"
        : "npm install --omit=dev";

    // ---- the stacks ----

    private static InitPlan Node(InitRequest request, string evidence)
    {
        var dir = request.Directory;
        JsonElement package;
        try { package = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "package.json"))).RootElement; }
        catch (JsonException e) { throw new InitException($"package.json is not valid JSON: {e.Message}"); }
        var name = package.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString()! : null;
        var app = name is null ? DirectoryApp(dir) : SafeName(name.Split('/')[^1]);
        string command, commandWhy;
        if (package.TryGetProperty("scripts", out var scripts) && scripts.ValueKind == JsonValueKind.Object
            && scripts.TryGetProperty("start", out var start) && start.ValueKind == JsonValueKind.String)
            (command, commandWhy) = (start.GetString()!, "the start script");
        else if (package.TryGetProperty("main", out var main) && main.ValueKind == JsonValueKind.String)
            (command, commandWhy) = ($"node {main.GetString()}", "main");
        else if (File.Exists(Path.Combine(dir, "server.js")))
            (command, commandWhy) = ("node server.js", "server.js (no start script or main)");
        else
            (command, commandWhy) = ("node index.js", "Node's default index.js (no start script or main)");
        var (ready, path, readyWhy) = NodeReadiness(dir);
        var draft = Start(request, app, "node", evidence, "rolling", "a Node app is a long-running server: new instances start, pass readiness, then old ones drain");
        Instances(draft, command, "PORT", ready, path);
        BuildHooks(draft, [NodeInstall(dir)]);
        return new InitPlan
        {
            Stack = "node", Evidence = evidence, Strategy = "rolling", Draft = draft,
            StrategyReason = "a Node server runs as instances behind Cutover's proxy, replaced one at a time",
            Notes = [$"run.command from {commandWhy}", $"ready: {ready} ({readyWhy})"],
        };
    }

    private static InitPlan Php(InitRequest request, string stack, string evidence)
    {
        var dir = request.Directory;
        var app = DirectoryApp(dir);
        if (File.Exists(Path.Combine(dir, "composer.json")))
        {
            try
            {
                var composer = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "composer.json"))).RootElement;
                if (composer.TryGetProperty("name", out var n) && n.ValueKind == JsonValueKind.String) app = SafeName(n.GetString()!.Split('/')[^1]);
            }
            catch (JsonException e) { throw new InitException($"composer.json is not valid JSON: {e.Message}"); }
        }
        var laravel = stack == "laravel";
        var draft = Start(request, app, stack, evidence, "symlink", "PHP is served by your web server and php-fpm: a new release directory and an atomic `current` switch is the whole deploy");
        if (laravel)
            draft.Map("shared", "Kept across releases: each release links these into shared/.")
                .Set("files", new[] { ".env" }, "create shared/.env before the first deploy")
                .Set("dirs", new[] { "storage" });
        var build = new List<string>();
        if (File.Exists(Path.Combine(dir, "composer.json"))) build.Add("composer install --no-dev --optimize-autoloader --no-interaction");
        var beforeSwitch = new List<string>();
        var sqlDir = SqlMigrationsDir(dir);
        if (laravel)
        {
            build.Add("php artisan config:cache");
            build.Add("php artisan route:cache");
            if (sqlDir is null) beforeSwitch.Add("php artisan migrate --force");
        }
        BuildHooks(draft, build, beforeSwitch);
        if (sqlDir is not null)
            draft.Map("migrations", "Plain SQL migrations: linted before staging, applied before the switch.").Set("dir", sqlDir);
        var webRoot = Directory.Exists(Path.Combine(dir, "public")) ? "current/public" : "current";
        var root = (string)draft["root"]!;
        return new InitPlan
        {
            Stack = stack, Evidence = evidence, Strategy = "symlink", Draft = draft,
            StrategyReason = "PHP runs in php-fpm under your web server, so the release switch is the `current` symlink",
            Notes =
            [
                "nginx must resolve the symlink per request, or PHP's caches keep serving the old release:",
                $"    root {root}/{webRoot};",
                "    location ~ \\.php$ {",
                "        include fastcgi_params;",
                "        fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;",
                "        fastcgi_param DOCUMENT_ROOT $realpath_root;",
                "        fastcgi_pass unix:/run/php/php-fpm.sock;",
                "    }",
            ],
        };
    }

    /// <summary>A directory of *.sql files (not under vendor/), relative to the project: migrations Cutover runs itself.</summary>
    private static string? SqlMigrationsDir(string dir) =>
        SourceFiles(dir, ".sql").Select(f => Path.GetRelativePath(dir, Path.GetDirectoryName(f)!)).Where(d => d != ".").Order(StringComparer.Ordinal).FirstOrDefault();

    /// <summary>The first *.csproj (here or one level down) whose Sdk is Microsoft.NET.Sdk.Web.</summary>
    private static string? WebProject(string dir)
    {
        var candidates = Directory.EnumerateFiles(dir, "*.csproj").Order(StringComparer.Ordinal)
            .Concat(Directory.EnumerateDirectories(dir).Order(StringComparer.Ordinal).SelectMany(d => Directory.EnumerateFiles(d, "*.csproj").Order(StringComparer.Ordinal)));
        foreach (var csproj in candidates)
        {
            try
            {
                var sdk = XDocument.Load(csproj).Root?.Attribute("Sdk")?.Value;
                if (sdk == "Microsoft.NET.Sdk.Web") return csproj;
            }
            catch (System.Xml.XmlException) { }
        }
        return null;
    }

    private static InitPlan DotNet(InitRequest request, string csproj, string evidence)
    {
        var dir = request.Directory;
        var project = XDocument.Load(csproj);
        var assembly = project.Descendants("AssemblyName").FirstOrDefault()?.Value is { Length: > 0 } named ? named : Path.GetFileNameWithoutExtension(csproj);
        var app = SafeName(assembly.ToLowerInvariant().Replace('.', '-'));
        var path = FirstMatch(dir, HealthRoute(), ".cs");
        var draft = Start(request, app, "dotnet", evidence, "rolling", "an ASP.NET Core app is a long-running server: new instances start, pass readiness, then old ones drain");
        // Kestrel listens on ASPNETCORE_HTTP_PORTS by itself; an app that reads PORT for UseUrls overrides that.
        var portEnv = FirstMatch(dir, ReadsPort(), ".cs") is null ? "ASPNETCORE_HTTP_PORTS" : "PORT";
        Instances(draft, $"dotnet out/{assembly}.dll", portEnv, "http", path ?? "/");
        var relative = Path.GetRelativePath(dir, csproj);
        BuildHooks(draft, [relative == Path.GetFileName(csproj) ? "dotnet publish -c Release -o out" : $"dotnet publish {relative} -c Release -o out"]);
        return new InitPlan
        {
            Stack = "dotnet", Evidence = evidence, Strategy = "rolling", Draft = draft,
            StrategyReason = "an ASP.NET Core server runs as instances behind Cutover's proxy, replaced one at a time",
            Notes =
            [
                $"assembly {assembly}; ready: http on {path ?? "/"}{(path is null ? " (no health route found)" : "")}",
                portEnv == "PORT" ? "port_env: PORT, because the code reads PORT (for UseUrls); Kestrel's own is ASPNETCORE_HTTP_PORTS" : "port_env: ASPNETCORE_HTTP_PORTS, which Kestrel listens on by itself",
            ],
        };
    }

    private static string? StaticIndex(string dir) =>
        new[] { "index.html", "dist/index.html", "public/index.html", "build/index.html" }.FirstOrDefault(f => File.Exists(Path.Combine(dir, f)));

    private static InitPlan Static(InitRequest request, string evidence)
    {
        var app = DirectoryApp(request.Directory);
        var draft = Start(request, app, "static", evidence, "symlink", "a static site is files your web server serves: the `current` switch is atomic");
        var sub = Path.GetDirectoryName(evidence) is { Length: > 0 } d ? "/" + d : "";
        var root = (string)draft["root"]!;
        return new InitPlan
        {
            Stack = "static", Evidence = evidence, Strategy = "symlink", Draft = draft,
            StrategyReason = "static files need no process: the web server reads the release `current` points at",
            Notes = [$"point your web server at {root}/current{sub} (nginx: root {root}/current{sub};)"],
        };
    }
}
