using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Cutover.Init;

/// <summary>YAML helpers for the imports: tolerant reads of a file someone else's tool validates.</summary>
internal static class Yaml
{
    public static YamlMappingNode Load(string file, string evidence)
    {
        var stream = new YamlStream();
        try { stream.Load(new StringReader(File.ReadAllText(file))); }
        catch (YamlException e) { throw new InitException($"{evidence}:{e.Start.Line}: not valid YAML: {e.InnerException?.Message ?? e.Message}"); }
        return stream.Documents.Count > 0 && stream.Documents[0].RootNode is YamlMappingNode root ? root
            : throw new InitException($"{evidence} is not a YAML mapping");
    }

    public static YamlNode? Get(this YamlMappingNode map, string key) =>
        map.Children.TryGetValue(new YamlScalarNode(key), out var v) ? v : null;

    public static YamlMappingNode? Map(this YamlMappingNode map, string key) => map.Get(key) as YamlMappingNode;

    public static string? Text(this YamlMappingNode map, string key) => (map.Get(key) as YamlScalarNode)?.Value;

    public static IEnumerable<string> Strings(this YamlNode? node) => node switch
    {
        YamlSequenceNode seq => seq.Children.OfType<YamlScalarNode>().Select(s => s.Value ?? ""),
        YamlScalarNode s when s.Value is { Length: > 0 } => [s.Value],
        _ => [],
    };

    /// <summary>compose/Kamal environment: a mapping, or a list of NAME=value.</summary>
    public static IEnumerable<(string Name, string Value)> Environment(YamlNode? node) => node switch
    {
        YamlMappingNode map => map.Children.Select(p => (((YamlScalarNode)p.Key).Value ?? "", (p.Value as YamlScalarNode)?.Value ?? "")),
        YamlSequenceNode seq => seq.Children.OfType<YamlScalarNode>().Select(s => s.Value ?? "").Where(s => s.Contains('='))
            .Select(s => (s[..s.IndexOf('=')], s[(s.IndexOf('=') + 1)..])),
        _ => [],
    };
}

/// <summary>
/// A compose file as a cutover.yml. A service whose `deploy:` has replicas and update_config is a Swarm service:
/// strategy swarm with swarm.compose naming the file (Cutover reads that service from it). Otherwise the app service
/// runs as containers behind Cutover's proxy (rolling, runtime: docker); other services (databases, caches) are
/// listed, not managed.
/// </summary>
public static class ComposeImport
{
    public static InitPlan Plan(InitRequest request, string file, string evidence)
    {
        var root = Yaml.Load(file, evidence);
        var services = root.Map("services") ?? throw new InitException($"{evidence} has no services");
        var all = services.Children.Select(p => (Name: ((YamlScalarNode)p.Key).Value!, Spec: p.Value as YamlMappingNode ?? new YamlMappingNode())).ToList();
        if (all.Count == 0) throw new InitException($"{evidence} has no services");
        var swarm = all.FirstOrDefault(s => s.Spec.Map("deploy") is { } d && d.Get("replicas") is not null && d.Get("update_config") is not null);
        // The app: the swarm service, else the first service built here or publishing a port, else the first.
        var (name, spec) = swarm.Name is not null ? swarm
            : all.FirstOrDefault(s => s.Spec.Get("build") is not null) is { Name: not null } built ? built
            : all.FirstOrDefault(s => s.Spec.Get("ports") is not null) is { Name: not null } withPorts ? withPorts
            : all[0];
        var app = StackDetector.SafeName(name);
        var others = all.Where(s => s.Name != name).Select(s => s.Name).ToList();
        var image = spec.Text("image");
        ConfigDraft draft;
        string strategy, why;
        if (swarm.Name is not null)
        {
            (strategy, why) = ("swarm", $"service {name} has deploy: with replicas and update_config, so it is a Swarm service and Swarm does the rolling update");
            draft = StackDetector.Start(request, app, "compose", evidence, strategy, why);
            var section = draft.Map("swarm", "Cutover reads image, replicas, command, environment, ports, networks and update_config of this service from the compose file.");
            section.Set("service", app);
            section.Set("compose", evidence);
            if (image is null) section.Set("image", $"{app}:latest", "the service has no image: `cutover deploy --image` names each release's");
        }
        else
        {
            (strategy, why) = ("rolling", $"service {name} runs on one host (no deploy: replicas + update_config): containers behind Cutover's proxy, replaced one at a time");
            draft = StackDetector.Start(request, app, "compose", evidence, strategy, why);
            draft.Set("runtime", "docker", "each instance is a container of docker.image");
            var docker = draft.Map("docker");
            docker.Set("image", image ?? $"{app}:latest", image is null ? "built here: `cutover deploy --image NAME:TAG` names each release's image" : null);
            var (published, target) = Port(spec);
            docker.Set("port", new RawScalar((target ?? 80).ToString(System.Globalization.CultureInfo.InvariantCulture)), target is null ? "no ports: in the compose file; the port the app listens on inside the container" : "the container port of ports:");
            var env = Yaml.Environment(spec.Get("environment")).ToList();
            if (env.Count > 0)
            {
                var envMap = docker.Map("env");
                foreach (var (k, v) in env) envMap.Set(k, v);
            }
            var volumes = spec.Get("volumes").Strings().Where(v => v.StartsWith('/') && v.Split(':').Length is 2 or 3).ToList();
            if (volumes.Count > 0) docker.Set("volumes", volumes);
            draft.Map("run").Set("instances", new RawScalar("2"), "replaced one at a time, so one always serves");
            draft.Map("proxy").Set("listen", $"0.0.0.0:{published ?? 3000}", published is null ? null : "the published port of ports:");
            if (spec.Map("healthcheck") is null) draft.Map("health").Set("path", "/", "each new container must answer here before it gets traffic");
        }
        if (others.Count > 0)
            draft.Footer.Add($"Not managed by Cutover (keep running them with compose): {string.Join(", ", others)}");
        return new InitPlan
        {
            Stack = "compose", Evidence = evidence, Strategy = strategy, Draft = draft, StrategyReason = why,
            Notes = others.Count > 0 ? [$"service {name} is the app; {string.Join(", ", others)} left to compose"] : [$"service {name} is the app"],
        };
    }

    /// <summary>The first ports: entry as (published, container): "8080:3000", "3000", or the long form.</summary>
    private static (int? Published, int? Target) Port(YamlMappingNode spec)
    {
        switch ((spec.Get("ports") as YamlSequenceNode)?.Children.FirstOrDefault())
        {
            case YamlScalarNode { Value: { } text }:
                var parts = text.Split('/')[0].Split(':');
                int? target = int.TryParse(parts[^1], out var t) ? t : null;
                int? published = parts.Length >= 2 && int.TryParse(parts[^2], out var p) ? p : null;
                return (published, target);
            case YamlMappingNode map:
                return (int.TryParse(map.Text("published"), out var pp) ? pp : null, int.TryParse(map.Text("target"), out var tt) ? tt : null);
            default:
                return (null, spec.Get("expose").Strings().Select(e => int.TryParse(e, out var x) ? x : (int?)null).FirstOrDefault());
        }
    }
}
