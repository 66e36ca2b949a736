using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Cutover.Config;

/// <summary>Reads `docker` (runtime: docker) and `swarm` (with an optional compose file) into their records.</summary>
internal static class ContainerConfigReader
{
    public static DockerConfig ReadDocker(YamlSection top, YamlSection? section)
    {
        if (section is null)
        {
            top.Error("runtime", "runtime: docker needs a 'docker' section with at least image and port");
            return new DockerConfig { Image = "", Port = 0 };
        }
        var image = section.RequiredString("image");
        var config = new DockerConfig
        {
            Host = DockerHost(section, "host"),
            Image = image,
            Port = section.Has("port") ? section.Int("port", 0, min: 1, max: 65535) : RequiredPort(section),
            Network = section.String("network", "cutover")!,
            Env = section.StringMap("env"),
            Volumes = section.StringList("volumes").Select(n => n.Value!).ToList(),
            Healthcheck = ReadHealthcheck(section.Section("healthcheck"), section, "healthcheck"),
            Init = section.String("init", "true") is "true" or "yes",
        };
        if (!ConfigLoader.IsSafeName(config.Network)) section.Error("network", $"'{config.Network}' is not a valid network name");
        foreach (var volume in section.StringList("volumes"))
            if (volume.Value!.Split(':').Length is < 2 or > 3)
                section.Error(volume, "volumes", $"'{volume.Value}' is not HOST:CONTAINER[:ro]");
        section.RejectUnknownKeys();
        return config;
    }

    private static int RequiredPort(YamlSection section)
    {
        section.Error("port", "'port' is required: the port the app listens on inside the container");
        return 0;
    }

    private static string DockerHost(YamlSection section, string key)
    {
        var host = section.String(key, "unix:///var/run/docker.sock")!;
        if (!host.StartsWith("unix://", StringComparison.Ordinal) && !host.StartsWith("tcp://", StringComparison.Ordinal))
            section.Error(key, $"'{host}' is not a Docker host; use unix:///path/to/docker.sock or tcp://host:2375");
        return host;
    }

    /// <summary>compose's healthcheck: test as a list (CMD, CMD-SHELL, NONE) or a string (run by the shell).</summary>
    public static ContainerHealthcheck? ReadHealthcheck(YamlSection? section, YamlSection parent, string key)
    {
        if (section is null) return null;
        var disabled = section.Choice("disable", false, ("true", true), ("false", false));
        var test = section.StringOrList("test");
        IReadOnlyList<string> words = [];
        if (test is null && !disabled) section.Error("test", "'test' is required, for example [\"CMD\", \"curl\", \"-f\", \"http://localhost:3000/health\"]");
        else if (test is { IsList: false } single) words = ["CMD-SHELL", single.Values[0]];
        else if (test is { } list)
        {
            words = list.Values;
            if (words.Count == 0 || words[0] is not ("CMD" or "CMD-SHELL" or "NONE"))
                section.Error("test", "a list test starts with CMD, CMD-SHELL or NONE");
        }
        // compose's `disable: true` is `test: ["NONE"]`: the image's own HEALTHCHECK is switched off too.
        if (disabled)
        {
            if (test is not null && !(words.Count == 1 && words[0] == "NONE"))
                section.Error("disable", "disable: true switches the healthcheck off; leave 'test' out (or make it [\"NONE\"])");
            words = ["NONE"];
        }
        var health = new ContainerHealthcheck
        {
            Test = words,
            Interval = section.Duration("interval", TimeSpan.FromSeconds(30), min: TimeSpan.FromMilliseconds(1)),
            Timeout = section.Duration("timeout", TimeSpan.FromSeconds(30), min: TimeSpan.FromMilliseconds(1)),
            Retries = section.Int("retries", 3, min: 1),
            StartPeriod = section.Duration("start_period", TimeSpan.Zero),
            // Docker refuses a start interval under 1 ms, as it does the interval.
            StartInterval = section.Has("start_interval") ? section.Duration("start_interval", TimeSpan.FromSeconds(5), min: TimeSpan.FromMilliseconds(1)) : null,
        };
        return health;
    }

    public static SwarmConfig ReadSwarm(YamlSection top, YamlSection? section, string file, List<string> warnings)
    {
        if (section is null)
        {
            top.Error("strategy", "strategy: swarm needs a 'swarm' section with at least service and image");
            return new SwarmConfig { Service = "", Image = "" };
        }
        var service = section.RequiredString("service");
        if (service.Length > 0 && !ConfigLoader.IsSafeName(service)) section.Error("service", $"'{service}' is not a valid service name");

        // The compose file gives the base; keys in cutover.yml override it.
        var compose = section.String("compose") is { Length: > 0 } composePath ? ReadCompose(Path.GetFullPath(composePath, Path.GetDirectoryName(file)!), service, section) : null;

        var command = section.StringOrList("command");
        var config = new SwarmConfig
        {
            DockerHost = DockerHost(section, "docker_host"),
            Service = service,
            Image = section.String("image") ?? compose?.Image ?? "",
            Replicas = section.Has("replicas") ? section.Int("replicas", 1, min: 0) : compose?.Replicas ?? 1,
            Command = command is null ? compose?.Command : command.Value.IsList ? command.Value.Values : ["/bin/sh", "-c", command.Value.Values[0]],
            Env = section.Has("env") ? section.StringMap("env") : compose?.Env ?? new Dictionary<string, string>(),
            Ports = compose?.Ports ?? [],
            Networks = section.Has("networks") ? section.StringList("networks").Select(n => n.Value!).ToList() : compose?.Networks ?? [],
            Update = ReadUpdate(section.Section("update"), compose?.Update ?? new SwarmUpdateConfig(), isRollback: false),
            Rollback = ReadUpdate(section.Section("rollback"), compose?.Rollback ?? new SwarmConfig { Service = "", Image = "" }.Rollback, isRollback: true),
            Healthcheck = ReadHealthcheck(section.Section("healthcheck"), section, "healthcheck") ?? compose?.Healthcheck,
            StopGracePeriod = section.Duration("stop_grace_period", compose?.StopGracePeriod ?? TimeSpan.FromSeconds(10)),
            Init = section.String("init", "true") is "true" or "yes",
            TaskDeadline = section.Has("task_deadline") ? section.Duration("task_deadline", TimeSpan.FromMinutes(2), min: TimeSpan.FromSeconds(1)) : null,
        };
        foreach (var network in config.Networks)
            if (!ConfigLoader.IsSafeName(network)) section.Error("networks", $"'{network}' is not a valid network name");
        if (config.Image.Length == 0) section.Error("image", "'image' is required (here, in the compose file, or as `cutover deploy --image`)");
        section.RejectUnknownKeys();
        warnings.AddRange(SwarmWarnings(config));
        return config;
    }

    /// <summary>Where Swarm would hang or mislead without saying so.</summary>
    internal static IEnumerable<string> SwarmWarnings(SwarmConfig config)
    {
        var hostPorts = config.Ports.Where(p => p.Mode == "host").ToList();
        foreach (var (key, update) in new[] { ("update", config.Update), ("rollback", config.Rollback) })
            if (update.Order == "start-first" && hostPorts.Count > 0)
                yield return $"swarm.{key}.order is start-first but port {hostPorts[0].Published} is published in host mode: the new task cannot bind it while the old one runs, stays pending forever, and pending never counts as a failure (moby #36934). Use stop-first, or ingress mode.";
        if (config.Healthcheck is null or { Test: ["NONE", ..] })
            yield return "swarm has no healthcheck: a task counts as running as soon as its process starts, before it can serve (moby #30321). Add swarm.healthcheck.";
        // Swarm starts the monitor window when a task first reports running, which with a healthcheck is its first
        // healthy probe; from there the healthcheck needs (interval + timeout) × retries to call it unhealthy.
        else if (config.Update.FailureAction != "continue" && config.Update.Monitor < config.Healthcheck.TimeToTurnUnhealthy)
            yield return $"swarm.update.monitor ({Duration.Format(config.Update.Monitor)}) is shorter than the healthcheck needs to call a running task unhealthy ({Duration.Format(config.Healthcheck.TimeToTurnUnhealthy)} = (interval + timeout) × retries): a new task that turns unhealthy after that is not counted as a failed update.";
    }

    private static SwarmUpdateConfig ReadUpdate(YamlSection? section, SwarmUpdateConfig fallback, bool isRollback)
    {
        if (section is null) return fallback;
        var actions = isRollback ? new[] { ("pause", "pause"), ("continue", "continue") } : new[] { ("rollback", "rollback"), ("pause", "pause"), ("continue", "continue") };
        var ratioText = section.String("max_failure_ratio", fallback.MaxFailureRatio.ToString(System.Globalization.CultureInfo.InvariantCulture))!;
        if (!double.TryParse(ratioText, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var ratio) || ratio is < 0 or > 1)
        {
            section.Error("max_failure_ratio", $"'{ratioText}' must be a number from 0 to 1");
            ratio = 0;
        }
        var update = new SwarmUpdateConfig
        {
            Parallelism = section.Int("parallelism", fallback.Parallelism, min: 0),
            Delay = section.Duration("delay", fallback.Delay),
            Order = section.Choice("order", fallback.Order, ("start-first", "start-first"), ("stop-first", "stop-first")),
            FailureAction = section.Choice("failure_action", fallback.FailureAction, actions),
            Monitor = section.Duration("monitor", fallback.Monitor),
            MaxFailureRatio = ratio,
        };
        section.RejectUnknownKeys();
        return update;
    }

    private sealed record ComposeService(string? Image, int? Replicas, IReadOnlyList<string>? Command, IReadOnlyDictionary<string, string> Env,
        IReadOnlyList<SwarmPort> Ports, IReadOnlyList<string> Networks, SwarmUpdateConfig? Update, SwarmUpdateConfig? Rollback, ContainerHealthcheck? Healthcheck, TimeSpan? StopGracePeriod);

    /// <summary>services.&lt;service&gt; of a compose file, as `docker stack deploy` reads it; mistakes name the compose file's line.</summary>
    private static ComposeService? ReadCompose(string path, string service, YamlSection section)
    {
        if (!File.Exists(path))
        {
            section.Error("compose", $"{path} does not exist");
            return null;
        }
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(File.ReadAllText(path)));
        }
        catch (YamlException e)
        {
            section.Error("compose", $"{path}:{e.Start.Line}:{e.Start.Column}: not valid YAML: {e.InnerException?.Message ?? e.Message}");
            return null;
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is not YamlMappingNode root) return null;
        var errors = section.Errors;
        var top = new YamlSection(root, path, "", errors);
        var services = top.Section("services");
        var entry = services?.Section(service);
        if (entry is null)
        {
            section.Error("compose", $"{path} has no services.{service}");
            return null;
        }
        var deploy = entry.Section("deploy");
        var command = entry.StringOrList("command");
        var ports = new List<SwarmPort>();
        foreach (var port in entry.PortEntries("ports"))
            ports.Add(port);
        var networks = entry.IsMapping("networks") ? entry.Section("networks")!.Keys.ToList() : entry.StringList("networks").Select(n => n.Value!).ToList();
        return new ComposeService(
            entry.String("image"),
            deploy?.Has("replicas") == true ? deploy.Int("replicas", 1, min: 0) : null,
            // compose splits a string command into words (no shell), as docker stack deploy does.
            command is null ? null : command.Value.IsList ? command.Value.Values : SplitWords(command.Value.Values[0]),
            entry.EnvironmentMap("environment"),
            ports,
            networks,
            deploy?.Section("update_config") is { } u ? ReadUpdate(u, new SwarmUpdateConfig { Order = "stop-first", FailureAction = "pause" }, isRollback: false) : null,
            // docker stack deploy's defaults for keys the file leaves out (docker/cli convertUpdateConfig): parallelism 1
            // for both, and swarmkit's stop-first, pause, 5 s monitor.
            deploy?.Section("rollback_config") is { } r ? ReadUpdate(r, new SwarmUpdateConfig { Order = "stop-first", FailureAction = "pause" }, isRollback: true) : null,
            ReadHealthcheck(entry.Section("healthcheck"), entry, "healthcheck"),
            entry.Has("stop_grace_period") ? entry.Duration("stop_grace_period", TimeSpan.FromSeconds(10)) : null);
    }

    /// <summary>Shell-like word splitting with single and double quotes and backslashes, without expansion.</summary>
    internal static IReadOnlyList<string> SplitWords(string text)
    {
        var words = new List<string>();
        var word = new System.Text.StringBuilder();
        var inWord = false;
        char quote = '\0';
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quote != '\0')
            {
                if (c == quote) quote = '\0';
                else if (c == '\\' && quote == '"' && i + 1 < text.Length) word.Append(text[++i]);
                else word.Append(c);
            }
            else if (c is '\'' or '"') { quote = c; inWord = true; }
            else if (c == '\\' && i + 1 < text.Length) { word.Append(text[++i]); inWord = true; }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord) words.Add(word.ToString());
                word.Clear();
                inWord = false;
            }
            else { word.Append(c); inWord = true; }
        }
        if (inWord) words.Add(word.ToString());
        return words;
    }
}
