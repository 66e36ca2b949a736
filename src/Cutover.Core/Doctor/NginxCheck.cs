namespace Cutover.Doctor;

/// <summary>
/// nginx serving the root must hand PHP the release's real path ($realpath_root): with $document_root the path
/// goes through `current`, and PHP's realpath and opcache caches keep serving the old release after a switch.
/// The configs read are those of the running nginx masters (their binary's `-T` with their -p/-c), or of the
/// nginx on PATH when none runs.
/// </summary>
public sealed class NginxCheck(string root, bool required) : IDoctorCheck
{
    public string Name => "nginx";

    /// <summary>Set by <see cref="RunAsync"/>: nginx passes PHP requests for the root to FastCGI (what the opcache check needs).</summary>
    public bool ServesPhp { get; private set; }

    public async Task<DoctorFinding> RunAsync(CancellationToken cancellationToken)
    {
        var configs = new List<(string Source, IReadOnlyList<string> Args, string Exe)>();
        foreach (var (pid, exe, commandLine) in RunningProcesses.WithCommandLine("nginx: master process"))
        {
            var words = commandLine.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var args = new List<string>();
            for (var i = 0; i + 1 < words.Length; i++)
                if (words[i] is "-p" or "-c") args.AddRange([words[i], words[i + 1]]);
            var binary = exe ?? (words.Length > 3 && File.Exists(words[3]) ? words[3] : RunningProcesses.OnPath("nginx"));
            if (binary is not null && !configs.Any(c => c.Exe == binary && c.Args.SequenceEqual(args))) configs.Add(($"nginx (pid {pid})", args, binary));
        }
        if (configs.Count == 0 && RunningProcesses.OnPath("nginx") is { } onPath) configs.Add((onPath, [], onPath));
        if (configs.Count == 0)
            return required ? DoctorFinding.Warning(Name, "no nginx found; whatever serves the root must resolve `current` per request") : DoctorFinding.Ok(Name, "no nginx here");

        var serving = new List<string>();
        var problems = new List<string>();
        var unreadable = new List<string>();
        foreach (var (source, args, exe) in configs)
        {
            var (code, stdout, stderr) = await RunningProcesses.RunAsync(exe, ["-T", .. args], TimeSpan.FromSeconds(10), cancellationToken);
            if (code != 0)
            {
                unreadable.Add($"{source}: {stderr.Trim().Split('\n').LastOrDefault()}");
                continue;
            }
            foreach (var http in NginxConfig.ParseDump(stdout).Where(d => d.Name == "http"))
                foreach (var server in http.Children("server"))
                    Inspect(source, http, server, serving, problems);
        }
        if (problems.Count > 0)
            return DoctorFinding.Error(Name, string.Join("; ", problems) + ": PHP's caches will serve the old release after a switch",
                "in each PHP location: fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name; fastcgi_param DOCUMENT_ROOT $realpath_root;");
        if (serving.Count > 0) return DoctorFinding.Ok(Name, string.Join("; ", serving));
        if (unreadable.Count > 0) return DoctorFinding.Warning(Name, $"cannot read nginx's config: {string.Join("; ", unreadable)}");
        return required
            ? DoctorFinding.Warning(Name, $"no nginx server serves {root}; whatever serves it must resolve `current` per request")
            : DoctorFinding.Ok(Name, $"nginx does not serve {root}");
    }

    private void Inspect(string source, NginxDirective http, NginxDirective server, List<string> serving, List<string> problems)
    {
        var name = $"{source} server {string.Join(' ', server.Children("server_name").SelectMany(d => d.Args).DefaultIfEmpty(string.Join(' ', server.Children("listen").Select(d => d.Args.FirstOrDefault()))))}".TrimEnd();
        var serverRoot = server.Children("root").LastOrDefault()?.Args.FirstOrDefault() ?? http.Children("root").LastOrDefault()?.Args.FirstOrDefault();
        var inheritedParams = Params(server) is { Count: > 0 } p ? p : Params(http);
        var servesRoot = UnderRoot(serverRoot);
        foreach (var location in Locations(server))
        {
            var locationRoot = location.Children("root").LastOrDefault()?.Args.FirstOrDefault() ?? serverRoot;
            if (!UnderRoot(locationRoot)) continue;
            servesRoot = true;
            if (!location.Children("fastcgi_pass").Any()) continue;
            ServesPhp = true;
            var parameters = Params(location) is { Count: > 0 } own ? own : inheritedParams;
            foreach (var param in new[] { "SCRIPT_FILENAME", "DOCUMENT_ROOT" })
            {
                var value = parameters.LastOrDefault(x => x.Name == param).Value;
                if (value is not null && !value.Contains("$realpath_root", StringComparison.Ordinal))
                    problems.Add($"{name}, location {string.Join(' ', location.Args)}: {param} is {value}, not $realpath_root");
            }
        }
        if (servesRoot && problems.Count == 0) serving.Add($"{name} serves {root} {(ServesPhp ? "with $realpath_root" : "(static files)")}");
    }

    private bool UnderRoot(string? path) =>
        path is not null && (path == root || path.StartsWith(root.TrimEnd('/') + "/", StringComparison.Ordinal));

    private static IEnumerable<NginxDirective> Locations(NginxDirective block) =>
        block.Children("location").SelectMany(l => Locations(l).Prepend(l));

    private static List<(string Name, string Value)> Params(NginxDirective block) =>
        block.Children("fastcgi_param").Where(d => d.Args.Count >= 2).Select(d => (d.Args[0], d.Args[1])).ToList();
}
