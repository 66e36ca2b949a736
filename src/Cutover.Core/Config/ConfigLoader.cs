using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Cutover.Config;

/// <summary>Reads and validates cutover.yml. Collects every mistake before failing, so one run shows them all.</summary>
public static class ConfigLoader
{
    public const string DefaultFileName = "cutover.yml";

    public static CutoverConfig Load(string path) => Load([path]);

    /// <summary>
    /// One or more config files (`-c a.yml -c b.yml`: later files override earlier ones key by key, see
    /// <see cref="ConfigLayers"/>).
    /// </summary>
    /// <param name="resolveEnvironment">
    /// True where `cutover deploy` runs: env_file is read and ${VAR} looked up (in <paramref name="lookup"/>, the process
    /// environment by default). The agent passes false: it has not the deployer's environment and takes each release's
    /// variables from that release's env file.
    /// </param>
    public static CutoverConfig Load(IReadOnlyList<string> paths, bool resolveEnvironment = true, Func<string, string?>? lookup = null)
    {
        var layered = ConfigLayers.Load(paths);
        var files = paths.Select(p => Path.GetFullPath(p)).ToArray();
        return Read(layered.Root, files[^1], layered.Sources, files, resolveEnvironment, lookup ?? System.Environment.GetEnvironmentVariable);
    }

    public static CutoverConfig Parse(string yaml, string file, Func<string, string?>? lookup = null)
    {
        var errors = new List<ConfigError>();
        var rootNode = ConfigLayers.ParseRoot(yaml, file, errors) ?? throw new ConfigException(errors);
        return Read(rootNode, file, null, [file], true, lookup ?? System.Environment.GetEnvironmentVariable);
    }

    private static CutoverConfig Read(YamlMappingNode rootNode, string file, ConfigSources? sources, IReadOnlyList<string> files, bool resolveEnvironment, Func<string, string?> lookup)
    {
        var errors = new List<ConfigError>();
        var top = new YamlSection(rootNode, file, "", errors, sources);
        var app = top.RequiredString("app");
        if (app.Length > 0 && !IsSafeName(app))
            top.Error("app", $"'{app}' may only contain letters, digits, '.', '_' and '-'");

        var strategyName = top.String("strategy", Strategy.Symlink.Name)!;
        var strategy = Strategy.Named(strategyName);
        if (strategy is null)
            top.Error("strategy", $"'{strategyName}' is not a strategy this version supports; supported: {string.Join(", ", Strategy.All)}");
        // A key the strategy does not read is refused, never ignored.
        foreach (var key in StrategyKeys.UsedBy.Keys.Where(k => !k.Contains('.') && !k.Contains('[')))
            if (strategy is not null && top.Has(key) && !strategy.Uses(key))
                top.KeyError(key, StrategyKeys.NotUsed(strategy, key));

        // Swarm keeps only Cutover's release records locally, so its root may be left to the default.
        var rootText = strategy == Strategy.Swarm ? top.String("root", Path.Combine(".cutover-swarm", app))! : top.RequiredString("root");
        var root = rootText.Length == 0 ? "" : ResolveRoot(rootText, top.FileOf("root"));
        if (root == "/")
            top.Error("root", $"'{rootText}' is the file system's root; Cutover writes releases/, shared/, current and .cutover/ into its root, so give it a directory of its own (for example /srv/{(app.Length > 0 ? app : "app")})");
        var keep = top.Int("keep_releases", 5, min: 1);
        // The rest of the file is read by what the strategy reads: with one we do not know, nothing more can be judged.
        if (strategy is null) throw new ConfigException(errors);

        var shared = ReadShared(top.Section("shared"));
        var hooks = ReadHooks(top.Section("hooks"), strategy);
        var warnings = new List<string>();
        HealthConfig? health;
        StrategySettings settings;
        if (strategy.RunsInstances)
        {
            var (instanceHealth, afterSwitch) = ReadInstanceHealth(top.Section("health"));
            health = afterSwitch;
            var runtime = ReadRuntime(top);
            var run = ReadRun(top, top.Section("run"), runtime, strategy);
            var proxy = ReadProxy(top, top.Section("proxy"), strategy);
            var logs = ReadLogs(top.Section("logs"));
            var processes = ProcessConfigReader.Read(top, run, runtime);
            settings = strategy == Strategy.BlueGreen
                ? new BlueGreenSettings { Run = run, Proxy = proxy, InstanceHealth = instanceHealth, Logs = logs, Runtime = runtime, Processes = processes, BlueGreen = ReadBlueGreen(top) }
                : new RollingSettings { Run = run, Proxy = proxy, InstanceHealth = instanceHealth, Logs = logs, Runtime = runtime, Processes = processes, Rolling = ReadRolling(top.Section("rolling")) with { Haproxy = ReadRollingRouter(top) } };
        }
        else
        {
            health = ReadHealth(top.Section("health"), strategy);
            settings = strategy == Strategy.Swarm
                ? new SwarmSettings { Swarm = ContainerConfigReader.ReadSwarm(top, top.Section("swarm"), top.FileOf("swarm"), warnings) }
                : new SymlinkSettings();
        }
        var migrations = ReadMigrations(top.Section("migrations"), top.FileOf("migrations"), settings);
        var environment = EnvConfigReader.Read(top, resolveEnvironment, lookup);
        var fleet = FleetConfigReader.Read(top, rootText, strategy);
        var notify = NotifyConfigReader.Read(top.Section("notify"), strategy);
        // A process type for a role no host carries would run nowhere: refused rather than silently never started.
        if (fleet is not null && settings is InstanceSettings withProcesses)
            foreach (var process in withProcesses.Processes)
                if (process.Roles is { } roles && fleet.UnknownRoles(roles) is { } unknown)
                    top.Section("processes")?.Section(process.Name)?.Error("roles", unknown);
        top.RejectUnknownKeys();

        if (errors.Count > 0) throw new ConfigException(errors);
        return environment.ApplyTo(new CutoverConfig
        {
            File = file,
            Files = files,
            App = app,
            Root = root,
            KeepReleases = keep,
            Shared = shared,
            Hooks = hooks,
            Health = health,
            Migrations = migrations,
            Settings = settings,
            Warnings = warnings,
            Fleet = fleet,
            Notify = notify,
        });
    }

    /// <summary>runtime: process (the default) or docker, with the docker section only for docker.</summary>
    private static InstanceRuntimeConfig ReadRuntime(YamlSection top)
    {
        var docker = top.Choice("runtime", false, ("process", false), ("docker", true));
        if (!docker)
        {
            if (top.Has("docker")) top.KeyError("docker", "'docker' is read only with runtime: docker");
            return new ProcessRuntimeConfig();
        }
        return ContainerConfigReader.ReadDocker(top, top.Section("docker"));
    }

    private static MigrationsConfig? ReadMigrations(YamlSection? section, string file, StrategySettings settings)
    {
        if (section is null) return null;
        var dir = section.RequiredString("dir");
        var levels = new[] { ("error", MigrationLintLevel.Error), ("warn", MigrationLintLevel.Warn), ("off", MigrationLintLevel.Off) };
        var level = MigrationLintLevel.Error;
        IReadOnlyList<string> exclude = [];
        if (section.IsMapping("lint"))
        {
            var lint = section.Section("lint")!;
            level = lint.Choice("level", MigrationLintLevel.Error, levels);
            exclude = lint.StringList("exclude").Select(n => n.Value!).ToArray();
            lint.RejectUnknownKeys();
        }
        else
        {
            level = section.Choice("lint", MigrationLintLevel.Error, levels);
        }
        var versionText = section.String("pg_version", "15")!;
        var major = versionText.Split('.')[0];
        if (!int.TryParse(major, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pgVersion) || pgVersion is < 9 or > 99)
        {
            section.Error("pg_version", $"'{versionText}' is not a PostgreSQL major version such as 15 or 11.0");
            pgVersion = 15;
        }
        var envName = section.String("database_url_env", "DATABASE_URL")!;
        if (envName.Length == 0 || !envName.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
            section.Error("database_url_env", $"'{envName}' is not an environment variable name");
        var config = new MigrationsConfig
        {
            Dir = dir.Length == 0 ? "" : Path.GetFullPath(dir, Path.GetDirectoryName(file)!),
            DatabaseUrlEnv = envName,
            LockTimeout = section.Duration("lock_timeout", TimeSpan.FromSeconds(5)),
            StatementTimeout = section.Duration("statement_timeout", TimeSpan.Zero),
            LockRetries = section.Int("lock_retries", 5, min: 1, max: 100),
            Lint = level,
            LintExclude = exclude,
            PgVersion = pgVersion,
            Pause = section.Choice("pause", false, ("true", true), ("false", false)),
            PauseTimeout = section.Duration("pause_timeout", TimeSpan.FromSeconds(30), min: TimeSpan.FromSeconds(1)),
        };
        // A pause holds requests in Cutover's proxy: strategies whose traffic does not pass through it cannot.
        if (config.Pause && PauseRefusal(settings) is { } why) section.Error("pause", $"needs traffic through Cutover's proxy; {why}");
        if (config.PauseTimeout > Proxy.TrafficGate.MaxPause) section.Error("pause_timeout", $"at most {Duration.Format(Proxy.TrafficGate.MaxPause)}");
        if (section.Has("pause_timeout") && !config.Pause) section.KeyError("pause_timeout", "pause_timeout is read only with pause: true");
        section.RejectUnknownKeys();
        return config;
    }

    private static string? PauseRefusal(StrategySettings settings) => settings switch
    {
        SymlinkSettings => "strategy: symlink serves through your web server",
        SwarmSettings => "strategy: swarm routes through Docker's ingress",
        BlueGreenSettings { BlueGreen.Router: "nginx" } => "blue-green with router: nginx routes through nginx",
        BlueGreenSettings { BlueGreen.Router: "haproxy" } or RollingSettings { Rolling.Haproxy: not null } => "router: haproxy routes through HAProxy",
        _ => null,
    };

    private static BlueGreenConfig ReadBlueGreen(YamlSection top)
    {
        var router = top.Choice("router", "builtin", ("builtin", "builtin"), ("nginx", "nginx"), ("haproxy", "haproxy"));
        NginxRouterConfig? nginx = null;
        var nginxSection = top.Section("nginx");
        if (router == "nginx" && nginxSection is null)
            top.Error("router", "router: nginx needs an 'nginx' section with at least upstream_file");
        if (nginxSection is not null)
        {
            var file = nginxSection.RequiredString("upstream_file");
            var name = nginxSection.String("upstream_name", "app_backend")!;
            if (!IsSafeName(name)) nginxSection.Error("upstream_name", $"'{name}' is not a valid nginx upstream name");
            nginx = new NginxRouterConfig
            {
                UpstreamFile = file.Length == 0 ? "" : Path.GetFullPath(file, Path.GetDirectoryName(nginxSection.FileOf("upstream_file"))!),
                UpstreamName = name,
                Test = nginxSection.String("test", "nginx -t")!,
                Reload = nginxSection.String("reload", "nginx -s reload")!,
            };
            nginxSection.RejectUnknownKeys();
        }
        var haproxy = ReadHaproxy(top, router);
        var section = top.Section("blue_green");
        if (section is null) return new BlueGreenConfig { Router = router, Nginx = nginx, Haproxy = haproxy };
        var rateText = section.String("max_error_rate", "1%")!;
        var rate = 0.01;
        var number = rateText.TrimEnd('%');
        if (!double.TryParse(number, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var parsed) || parsed < 0
            || (rateText.EndsWith('%') ? parsed > 100 : parsed > 1))
            section.Error("max_error_rate", $"'{rateText}' is not a rate such as 1% or 0.01");
        else
            rate = rateText.EndsWith('%') ? parsed / 100 : parsed;
        var config = new BlueGreenConfig
        {
            KeepPrevious = section.Duration("keep_previous", TimeSpan.FromMinutes(10)),
            Monitor = section.Duration("monitor", TimeSpan.FromSeconds(30)),
            MaxErrorRate = rate,
            Router = router,
            Nginx = nginx,
            Haproxy = haproxy,
        };
        section.RejectUnknownKeys();
        return config;
    }

    /// <summary>Rolling's `router`: builtin, or haproxy (each instance added and removed through HAProxy's runtime API).</summary>
    private static HaproxyRouterConfig? ReadRollingRouter(YamlSection top)
    {
        var router = top.Choice("router", "builtin", ("builtin", "builtin"), ("nginx", "nginx"), ("haproxy", "haproxy"));
        // nginx's upstream file is written for a whole set at a switch; a rolling update changes one instance at a time.
        if (router == "nginx") top.Error("router", "router: nginx is for strategy: blue-green; strategy: rolling takes builtin or haproxy");
        return ReadHaproxy(top, router);
    }

    /// <summary>`haproxy: { socket, backend }`, read only with router: haproxy (a section for another router is an error).</summary>
    private static HaproxyRouterConfig? ReadHaproxy(YamlSection top, string router)
    {
        var section = top.Section("haproxy");
        if (router == "haproxy" && section is null)
            top.Error("router", "router: haproxy needs a 'haproxy' section with socket and backend");
        if (section is null) return null;
        if (router != "haproxy") top.KeyError("haproxy", $"the 'haproxy' section is read only with router: haproxy (router is {router})");
        var socket = section.RequiredString("socket");
        var backend = section.RequiredString("backend");
        if (backend.Length > 0 && !backend.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':'))
            section.Error("backend", $"'{backend}' is not an HAProxy backend name (letters, digits, '-', '_', '.', ':')");
        section.RejectUnknownKeys();
        return new HaproxyRouterConfig
        {
            Socket = socket.Length == 0 ? "" : Path.GetFullPath(socket, Path.GetDirectoryName(section.FileOf("socket"))!),
            Backend = backend,
        };
    }

    private static RunConfig ReadRun(YamlSection top, YamlSection? section, InstanceRuntimeConfig runtime, Strategy strategy)
    {
        // The runtime gives the stop defaults (containers Docker's, processes PM2's) and says whether run.command is its to give.
        var (defaultSignalName, defaultSignal) = runtime.DefaultStopSignal;
        if (section is null && runtime.RunsImageCommand)
            return new RunConfig { Command = "", StopSignal = defaultSignal, StopSignalName = defaultSignalName, KillTimeout = runtime.DefaultKillTimeout };
        if (section is null)
        {
            top.Error("run", $"strategy: {strategy} needs a 'run' section with at least 'command'");
            return new RunConfig { Command = "" };
        }
        var instancesText = section.String("instances", "1")!;
        var instances = 1;
        if (instancesText == "max") instances = Environment.ProcessorCount;
        else instances = section.Int("instances", 1, min: 1, max: 256);
        var signal = SupervisionKeys.StopSignal(section, runtime);
        var restart = section.Section("restart");
        var run = SupervisionKeys.Apply(new RunConfig
        {
            Command = runtime.RunsImageCommand ? section.String("command", "")! : section.RequiredString("command"),
            Instances = instances,
            Env = section.StringMap("env"),
            PortEnv = section.String("port_env", "PORT")!,
            Ready = section.Choice("ready", ReadinessKind.Http,
                ("http", ReadinessKind.Http), ("tcp", ReadinessKind.Tcp), ("notify", ReadinessKind.Notify), ("message", ReadinessKind.Message)),
        }, section, restart, signal, runtime);
        restart?.RejectUnknownKeys();
        if (!runtime.PassesReadySignals && run.Ready is ReadinessKind.Notify or ReadinessKind.Message)
            section.Error("ready", "with runtime: docker, ready is http or tcp (checked at the container's address), and docker.healthcheck gates traffic too");
        if (runtime.RunsImageCommand && run.Command.Length > 0)
            section.Error("command", "with runtime: docker the image's own command runs; leave run.command out");
        section.RejectUnknownKeys();
        return run;
    }

    /// <summary>The `proxy` section: Cutover's proxy in front of the instances. Every proxy key is read here.</summary>
    private static ProxyConfig ReadProxy(YamlSection top, YamlSection? section, Strategy strategy)
    {
        if (section is null)
        {
            top.Error("proxy", $"strategy: {strategy} needs a 'proxy' section with 'listen', for example listen: 0.0.0.0:3000");
            return new ProxyConfig { Listen = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0) };
        }
        var listenText = section.RequiredString("listen");
        System.Net.IPEndPoint? listen = null;
        if (listenText.Length > 0 && !TryParseListen(listenText, out listen))
            section.Error("listen", $"'{listenText}' is not an address and port such as 0.0.0.0:3000, 127.0.0.1:8080 or [::]:3000");
        var maxHeaders = section.Size("max_request_headers", 32 * 1024);
        if (section.Has("max_request_headers") && maxHeaders is < 1024 or > ProxyConfig.HeaderLimitCeiling)
            section.Error("max_request_headers", $"must be between 1K and {ProxyConfig.HeaderLimitCeiling / 1024}K");
        long? maxBody = section.Has("max_request_body") ? section.Size("max_request_body", 0) : null;
        if (maxBody is < 1) section.Error("max_request_body", "must be at least 1 byte");
        var proxy = new ProxyConfig
        {
            Listen = listen ?? new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
            DrainTimeout = section.Duration("drain_timeout", TimeSpan.FromSeconds(30)),
            Hosts = ReadProxyHosts(section),
            PathPrefix = ReadPathPrefix(section),
            TrustedProxies = ReadTrustedProxies(section),
            MaxRequestBody = maxBody,
            MaxRequestHeaders = maxHeaders,
            ResponseTimeout = section.Duration("response_timeout", TimeSpan.FromSeconds(60), min: TimeSpan.FromMilliseconds(100)),
            ActivityTimeout = section.Duration("activity_timeout", ProxyConfig.DefaultActivityTimeout, min: TimeSpan.FromMilliseconds(100)),
        };
        // A timer's ceiling is about 49 days; a day is already far past any body worth waiting for.
        if (proxy.ActivityTimeout > ProxyConfig.MaxActivityTimeout)
            section.Error("activity_timeout", $"must be at most {Duration.Format(ProxyConfig.MaxActivityTimeout)}");
        proxy = proxy with { Tls = ReadTls(section.Section("tls"), listen, proxy.Hosts, section) };
        section.RejectUnknownKeys();
        return proxy;
    }

    /// <summary>proxy.hosts: exact names or one-label wildcards (*.example.com), lower-cased, no ports, no repeats.</summary>
    private static IReadOnlyList<string> ReadProxyHosts(YamlSection section)
    {
        var hosts = new List<string>();
        foreach (var node in section.StringList("hosts"))
        {
            var host = node.Value!.Trim().TrimEnd('.').ToLowerInvariant();
            var name = host.StartsWith("*.", StringComparison.Ordinal) ? host[2..] : host;
            var valid = name.Length > 0 && name.Split('.').All(label => label.Length is > 0 and <= 63
                && label.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') && label[0] != '-' && label[^1] != '-');
            if (!valid || (host.StartsWith("*.", StringComparison.Ordinal) && !name.Contains('.')))
                section.Error(node, "hosts", $"'{node.Value}' is not a host name such as shop.example.com or *.example.com (no scheme, port or path)");
            else if (hosts.Contains(host)) section.Error(node, "hosts", $"'{node.Value}' is listed twice");
            else hosts.Add(host);
        }
        return hosts;
    }

    /// <summary>proxy.path_prefix: "/" or "/segment[/segment...]", kept without a trailing slash.</summary>
    private static string ReadPathPrefix(YamlSection section)
    {
        var text = section.String("path_prefix", "/")!.Trim();
        if (!text.StartsWith('/') || text.IndexOfAny(['?', '#', '*', ' ', '%']) >= 0 || text.Contains("//", StringComparison.Ordinal))
        {
            section.Error("path_prefix", $"'{text}' is not a path prefix such as / or /api");
            return "/";
        }
        return text.Length > 1 ? text.TrimEnd('/') : text;
    }

    /// <summary>proxy.trusted_proxies: CIDRs (127.0.0.1/32, ::1/128) or single addresses.</summary>
    private static IReadOnlyList<System.Net.IPNetwork> ReadTrustedProxies(YamlSection section)
    {
        var networks = new List<System.Net.IPNetwork>();
        foreach (var node in section.StringList("trusted_proxies"))
        {
            var text = node.Value!.Trim();
            if (System.Net.IPNetwork.TryParse(text, out var network)) networks.Add(network);
            else if (System.Net.IPAddress.TryParse(text, out var address))
                networks.Add(new System.Net.IPNetwork(address, address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
            else section.Error(node, "trusted_proxies", $"'{text}' is not an address or CIDR network such as 10.0.0.0/8 or ::1/128");
        }
        return networks;
    }

    /// <summary>proxy.tls: listen plus either cert and key (PEM files) or acme (certificates for every name in proxy.hosts).</summary>
    private static TlsConfig? ReadTls(YamlSection? section, System.Net.IPEndPoint? plainListen, IReadOnlyList<string> hosts, YamlSection proxy)
    {
        if (section is null) return null;
        var listenText = section.RequiredString("listen");
        System.Net.IPEndPoint? listen = null;
        if (listenText.Length > 0 && !TryParseListen(listenText, out listen))
            section.Error("listen", $"'{listenText}' is not an address and port such as 0.0.0.0:443");
        else if (listen is not null && listen.Equals(plainListen))
            section.Error("listen", $"{listen} is proxy.listen already; TLS needs an address of its own, for example 0.0.0.0:443");
        var cert = section.String("cert");
        var key = section.String("key");
        var hasFiles = !string.IsNullOrWhiteSpace(cert) || !string.IsNullOrWhiteSpace(key);
        AcmeConfig? acme = null;
        if (section.Has("acme") && hasFiles)
            section.KeyError("acme", "give either cert and key (PEM files) or acme, not both");
        else if (section.Has("acme"))
            acme = ReadAcme(section, hosts, proxy);
        else if (string.IsNullOrWhiteSpace(cert) != string.IsNullOrWhiteSpace(key))
            section.Error(string.IsNullOrWhiteSpace(cert) ? "cert" : "key", "cert and key go together: the PEM certificate (chain) and its private key");
        else if (!hasFiles)
            section.Error("cert", "tls needs cert and key (the PEM files of the certificate chain and its private key) or acme (certificates from an ACME server)");
        // Absolute only: the agent reads them, and a fleet host gets the config copied elsewhere.
        foreach (var (name, value) in new[] { ("cert", cert), ("key", key) })
            if (!string.IsNullOrWhiteSpace(value) && !Path.IsPathRooted(value))
                section.Error(name, $"'{value}' is relative; give the absolute path of the PEM file (the agent reads it, wherever the config is copied)");
        var tls = new TlsConfig
        {
            Listen = listen ?? new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0),
            CertFile = string.IsNullOrWhiteSpace(cert) ? null : cert,
            KeyFile = string.IsNullOrWhiteSpace(key) ? null : key,
            Acme = acme,
            RedirectHttp = section.Choice("redirect_http", true, ("true", true), ("false", false)),
            Hsts = section.Choice("hsts", false, ("true", true), ("false", false)),
        };
        section.RejectUnknownKeys();
        return tls;
    }

    /// <summary>
    /// proxy.tls.acme: email, directory (Let's Encrypt production by default), ca_cert. The names are proxy.hosts, so
    /// they must exist and none may be a wildcard (http-01 cannot prove one), and proxy.listen must be a fixed port:
    /// the CA's validation dials it.
    /// </summary>
    private static AcmeConfig? ReadAcme(YamlSection tls, IReadOnlyList<string> hosts, YamlSection proxy)
    {
        // One error for a scalar or empty acme (Section would add its own for a scalar).
        var section = tls.IsMapping("acme") ? tls.Section("acme") : null;
        if (section is null)
        {
            tls.Error("acme", "acme is a mapping: email, and optionally directory and ca_cert");
            return null;
        }
        var email = section.String("email");
        if (email is not null && (email.Trim().Length == 0 || !email.Contains('@') || email.Any(char.IsWhiteSpace) || email.StartsWith("mailto:", StringComparison.OrdinalIgnoreCase)))
            section.Error("email", $"'{email}' is not an email address such as ops@example.com");
        var directoryText = section.String("directory");
        var directory = Acme.AcmeOptions.LetsEncryptProduction;
        if (directoryText is not null && !(Uri.TryCreate(directoryText.Trim(), UriKind.Absolute, out directory!) && directory.Scheme == "https"))
        {
            section.Error("directory", $"'{directoryText}' is not the https:// URL of an ACME directory, such as {Acme.AcmeOptions.LetsEncryptProduction}");
            directory = Acme.AcmeOptions.LetsEncryptProduction;
        }
        var caCert = section.String("ca_cert");
        if (caCert is not null && !Path.IsPathRooted(caCert))
            section.Error("ca_cert", $"'{caCert}' is relative; give the absolute path of the CA's PEM certificate (the agent reads it)");
        else if (caCert is not null && !File.Exists(caCert))
            section.Error("ca_cert", $"'{caCert}' does not exist; give the PEM certificate of the CA that signed the ACME server's HTTPS certificate");
        if (hosts.Count == 0)
            proxy.KeyError("tls", "tls.acme obtains a certificate for the names in proxy.hosts; list them (for example hosts: [shop.example.com])");
        foreach (var wildcard in hosts.Where(h => h.StartsWith("*.", StringComparison.Ordinal)))
            proxy.Error("hosts", $"'{wildcard}' is a wildcard: tls.acme answers the http-01 challenge, which cannot validate wildcards; list each host name, or give cert and key");
        section.RejectUnknownKeys();
        return new AcmeConfig { Email = email, Directory = directory, CaCertPath = caCert };
    }

    private static LogsConfig ReadLogs(YamlSection? section)
    {
        if (section is null) return new LogsConfig();
        var logs = new LogsConfig
        {
            MaxSize = section.Size("max_size", 10L << 20),
            Retain = section.Int("retain", 5, min: 0),
            AccessLog = section.Choice("access_log", false, ("true", true), ("false", false)),
        };
        // A limit below one line would rotate on every write.
        if (section.Has("max_size") && logs.MaxSize < 1024)
            section.Error("max_size", $"must be at least 1KB, got {section.String("max_size")}");
        section.RejectUnknownKeys();
        return logs;
    }

    internal static bool TryParseListen(string text, out System.Net.IPEndPoint endpoint)
    {
        if (text.StartsWith(':')) text = "0.0.0.0" + text;
        if (System.Net.IPEndPoint.TryParse(text, out endpoint!) && endpoint.Port is > 0 and <= 65535 && text.Contains(':')) return true;
        endpoint = null!;
        return false;
    }

    /// <summary>
    /// An agent app's health section: each instance's check (path, interval, timeout, retries, start_period) and,
    /// with `url`, the check after the switch that every strategy runs (through the public URL, with the same
    /// interval, timeout and retries, expecting expect_status).
    /// </summary>
    private static (InstanceHealthConfig Instance, HealthConfig? AfterSwitch) ReadInstanceHealth(YamlSection? section)
    {
        if (section is null) return (new InstanceHealthConfig(), null);
        var path = section.String("path", "/health")!;
        if (!path.StartsWith('/')) section.Error("path", $"'{path}' must start with '/'");
        var health = new InstanceHealthConfig
        {
            Path = path,
            Interval = section.Duration("interval", TimeSpan.FromSeconds(1), min: TimeSpan.FromMilliseconds(10)),
            Timeout = section.Duration("timeout", TimeSpan.FromSeconds(2), min: TimeSpan.FromMilliseconds(1)),
            Retries = section.Int("retries", 3, min: 1),
            StartPeriod = section.Duration("start_period", TimeSpan.Zero),
        };
        HealthConfig? afterSwitch = null;
        if (section.Has("url"))
        {
            var urlText = section.RequiredString("url");
            if (!Uri.TryCreate(urlText, UriKind.Absolute, out var url) || url.Scheme is not ("http" or "https"))
                section.Error("url", $"'{urlText}' is not an http:// or https:// URL");
            else
                afterSwitch = new HealthConfig
                {
                    Url = url,
                    ExpectStatus = section.Int("expect_status", 200, min: 100, max: 599),
                    Timeout = health.Timeout,
                    Interval = health.Interval,
                    Retries = health.Retries,
                };
        }
        else if (section.Has("expect_status"))
        {
            section.Error("expect_status", "belongs to health.url, the check after the switch; give the url too");
        }
        section.RejectUnknownKeys();
        return (health, afterSwitch);
    }

    private static RollingConfig ReadRolling(YamlSection? section)
    {
        if (section is null) return new RollingConfig();
        var ratioText = section.String("max_failure_ratio", "0")!;
        if (!double.TryParse(ratioText, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var ratio) || ratio is < 0 or > 1)
        {
            section.Error("max_failure_ratio", $"'{ratioText}' must be a number from 0 to 1");
            ratio = 0;
        }
        var rolling = new RollingConfig
        {
            Parallelism = section.Int("parallelism", 1, min: 1),
            Order = section.Choice("order", RollingOrder.StartFirst, ("start-first", RollingOrder.StartFirst), ("stop-first", RollingOrder.StopFirst)),
            Delay = section.Duration("delay", TimeSpan.Zero),
            Monitor = section.Duration("monitor", TimeSpan.FromSeconds(5)),
            FailureAction = section.Choice("failure_action", FailureAction.Rollback,
                ("rollback", FailureAction.Rollback), ("pause", FailureAction.Pause), ("continue", FailureAction.Continue)),
            MaxFailureRatio = ratio,
        };
        section.RejectUnknownKeys();
        return rolling;
    }

    private static string ResolveRoot(string text, string file)
    {
        if (text.StartsWith("~/", StringComparison.Ordinal))
            text = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), text[2..]);
        var baseDir = Path.GetDirectoryName(file) ?? Directory.GetCurrentDirectory();
        return Path.TrimEndingDirectorySeparator(Path.GetFullPath(text, baseDir));
    }

    private static SharedConfig ReadShared(YamlSection? section)
    {
        if (section is null) return new SharedConfig();
        var seen = new List<(string Path, YamlScalarNode Node, string Key)>();
        foreach (var key in new[] { "files", "dirs" })
        {
            foreach (var node in section.StringList(key))
            {
                var normalized = SharedPaths.Normalize(node.Value!, out var error);
                if (normalized is null)
                {
                    section.Error(node, key, error!);
                    continue;
                }
                var clash = seen.FirstOrDefault(s => SharedPaths.Overlap(s.Path, normalized));
                if (clash.Path is not null)
                {
                    section.Error(node, key, clash.Path == normalized
                        ? $"'{normalized}' is listed twice (also at line {clash.Node.Start.Line} in {clash.Key})"
                        : $"'{normalized}' overlaps '{clash.Path}' (line {clash.Node.Start.Line}); a shared path cannot contain another");
                    continue;
                }
                seen.Add((normalized, node, key));
            }
        }
        section.RejectUnknownKeys();
        return new SharedConfig
        {
            Files = seen.Where(s => s.Key == "files").Select(s => s.Path).ToArray(),
            Dirs = seen.Where(s => s.Key == "dirs").Select(s => s.Path).ToArray(),
        };
    }

    private static HooksConfig ReadHooks(YamlSection? section, Strategy strategy)
    {
        if (section is null) return new HooksConfig();
        if (section.Has("build") && !strategy.Uses("hooks.build"))
            section.KeyError("build", StrategyKeys.NotUsed(strategy, "hooks.build") + "; build it into the image (before_switch, after_switch and after_rollback hooks run with swarm)");
        static string[] Commands(YamlSection s, string key) => s.StringList(key).Select(n => n.Value!).ToArray();
        var hooks = new HooksConfig
        {
            Build = Commands(section, "build"),
            BeforeSwitch = Commands(section, "before_switch"),
            AfterSwitch = Commands(section, "after_switch"),
            AfterRollback = Commands(section, "after_rollback"),
            Timeout = section.Duration("timeout", TimeSpan.FromMinutes(10), min: TimeSpan.FromMilliseconds(1)),
        };
        section.RejectUnknownKeys();
        return hooks;
    }

    /// <summary>symlink and swarm: the health section is only the check after the switch.</summary>
    private static HealthConfig? ReadHealth(YamlSection? section, Strategy strategy)
    {
        if (section is null) return null;
        foreach (var key in new[] { "path", "start_period" })
            if (section.Has(key)) section.KeyError(key, StrategyKeys.NotUsed(strategy, "health." + key));
        var urlText = section.RequiredString("url");
        Uri? url = null;
        if (urlText.Length > 0 && (!Uri.TryCreate(urlText, UriKind.Absolute, out url) || url.Scheme is not ("http" or "https")))
        {
            section.Error("url", $"'{urlText}' is not an http:// or https:// URL");
            url = null;
        }
        var health = new HealthConfig
        {
            Url = url ?? new Uri("http://invalid/"),
            ExpectStatus = section.Int("expect_status", 200, min: 100, max: 599),
            Timeout = section.Duration("timeout", TimeSpan.FromSeconds(2), min: TimeSpan.FromMilliseconds(1)),
            Interval = section.Duration("interval", TimeSpan.FromMilliseconds(500)),
            Retries = section.Int("retries", 10, min: 1),
        };
        section.RejectUnknownKeys();
        return health;
    }

    internal static bool IsSafeName(string name) =>
        name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-') && name != "." && name != "..";
}
