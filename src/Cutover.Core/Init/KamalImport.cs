using YamlDotNet.RepresentationModel;

namespace Cutover.Init;

/// <summary>
/// Kamal's config/deploy.yml as a cutover.yml: containers (runtime: docker) of `image`, hosts and roles from
/// `servers`, kamal-proxy's host/ssl/app_port/healthcheck as proxy.hosts, tls.acme, docker.port and health.path,
/// env.clear as env and env.secret as ${NAME} references (resolved where `cutover deploy` runs, and redacted).
/// </summary>
public static class KamalImport
{
    public static InitPlan Plan(InitRequest request, string file, string evidence)
    {
        var root = Yaml.Load(file, evidence);
        var app = root.Text("service") is { } service ? StackDetector.SafeName(service) : StackDetector.DirectoryApp(request.Directory);
        var image = root.Text("image") ?? throw new InitException($"{evidence} has no image");
        const string why = "Kamal boots the new container, then switches kamal-proxy to it; Cutover's rolling strategy with runtime: docker does the same per instance";
        var draft = StackDetector.Start(request, app, "kamal", evidence, "rolling", why);
        draft.Set("runtime", "docker");
        var proxy = root.Map("proxy");
        var docker = draft.Map("docker");
        docker.Set("image", image, "`cutover deploy --image` gives each release's tag");
        docker.Set("port", new RawScalar(proxy?.Text("app_port") ?? "80"), "proxy.app_port (Kamal's default 80)");
        var unmapped = new List<string>();

        // servers: a list of hosts (role web), or role -> list / {hosts, cmd}.
        var hosts = new List<(string Host, List<string> Roles)>();
        var processes = new List<(string Role, string Command)>();
        switch (root.Get("servers"))
        {
            case YamlSequenceNode list:
                foreach (var h in list.Strings()) hosts.Add((h, ["web"]));
                break;
            case YamlMappingNode roles:
                foreach (var (key, value) in roles.Children)
                {
                    var role = ((YamlScalarNode)key).Value!;
                    var roleHosts = value is YamlMappingNode spec ? spec.Get("hosts").Strings() : value.Strings();
                    foreach (var h in roleHosts)
                    {
                        var existing = hosts.FindIndex(x => x.Host == h);
                        if (existing >= 0) hosts[existing].Roles.Add(role);
                        else hosts.Add((h, [role]));
                    }
                    if (role != "web" && value is YamlMappingNode withCmd && withCmd.Text("cmd") is { } cmd) processes.Add((role, cmd));
                    else if (role != "web") unmapped.Add($"servers.{role}: no cmd, so no process type (Cutover's web is the image's own command)");
                }
                break;
        }
        draft.Map("run").Set("instances", new RawScalar("1"), "per host; 2 keeps serving while one is replaced");
        var proxyDraft = draft.Map("proxy");
        proxyDraft.Set("listen", "0.0.0.0:80", "kamal-proxy's port");
        var names = proxy?.Get("hosts").Strings().ToList() ?? [];
        if (proxy?.Text("host") is { } single) names.Insert(0, single);
        if (names.Count > 0) proxyDraft.Set("hosts", names);
        if (proxy?.Text("ssl") == "true")
            proxyDraft.Map("tls").Set("listen", "0.0.0.0:443").Map("acme", "certificates from Let's Encrypt for proxy.hosts; add email: to be told about expiry");
        draft.Map("health").Set("path", proxy?.Map("healthcheck")?.Text("path") ?? "/up", "proxy.healthcheck.path (Kamal's default /up)");
        if (processes.Count > 0)
        {
            var types = draft.Map("processes", "Kamal roles with their own cmd: process types on the hosts with that role.");
            foreach (var (role, command) in processes)
                types.Map(role.ToLowerInvariant()).Set("command", command).Set("roles", new[] { role });
        }
        var env = root.Map("env");
        var clear = env?.Map("clear") ?? (env is not null && env.Map("secret") is null && env.Get("secret") is null ? env : null);
        var secrets = env?.Get("secret").Strings().ToList() ?? [];
        if (clear is not null || secrets.Count > 0)
        {
            var envDraft = draft.Map("env", "env.clear as is; env.secret as ${NAME}, read where `cutover deploy` runs (shown as *** in output).");
            foreach (var (k, v) in Yaml.Environment(clear)) envDraft.Set(k, v);
            foreach (var name in secrets) envDraft.Set(name, "${" + name + "}");
        }
        if (hosts.Count > 0)
        {
            draft.Set("hosts", hosts.Select(h => new ConfigDraft().Set("host", h.Host).Set("roles", h.Roles)).ToList());
            var ssh = root.Map("ssh");
            if (ssh?.Text("user") is { } user) draft.Map("ssh").Set("user", user);
        }
        foreach (var key in root.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value!))
            if (key is not ("service" or "image" or "servers" or "proxy" or "env" or "ssh"))
                unmapped.Add($"{key} (no Cutover equivalent)");
        foreach (var key in proxy?.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value!) ?? [])
            if (key is not ("host" or "hosts" or "ssl" or "app_port" or "healthcheck"))
                unmapped.Add($"proxy.{key} (no Cutover equivalent)");
        if (unmapped.Count > 0)
        {
            draft.Footer.Add($"Not mapped from {evidence}:");
            draft.Footer.AddRange(unmapped.Select(u => "  " + u));
        }
        return new InitPlan
        {
            Stack = "kamal", Evidence = evidence, Strategy = "rolling", Draft = draft, StrategyReason = why, Unmapped = unmapped,
            Notes = [$"{hosts.Count} host(s); image {image}"],
        };
    }
}
