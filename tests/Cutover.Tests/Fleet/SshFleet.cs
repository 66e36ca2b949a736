using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Cutover.Tests.Support;

namespace Cutover.Tests.Fleet;

/// <summary>One sshd "host": its own loopback address, port, host key, $HOME, CUTOVER_HOME and deploy root.</summary>
public sealed class SshHost
{
    public required string Address { get; init; }
    public required int Port { get; init; }
    public required string Dir { get; init; }
    public string Home => Path.Combine(Dir, "home");
    public string AgentHome => Path.Combine(Home, ".cutover-agent");
    public string Root => Path.Combine(Dir, "root");
    public string ConfigFile => Path.Combine(Dir, "etc", "sshd_config");
    public string HostKey => Path.Combine(Dir, "etc", "ssh_host_ed25519_key");
    public string Log => Path.Combine(Dir, "sshd.log");
    public Process? Sshd { get; set; }
    public string Name => $"{Address}:{Port}";

    /// <summary>The line OpenSSH writes to known_hosts for this host.</summary>
    public string KnownHostsLine()
    {
        var pub = File.ReadAllText(HostKey + ".pub").Split(' ');
        return $"[{Address}]:{Port} {pub[0]} {pub[1].Trim()}";
    }

    /// <summary>The `current` release under this host's root, or null.</summary>
    public string? Current()
    {
        var link = new FileInfo(Path.Combine(Root, "current"));
        return link.LinkTarget is { } target ? Path.GetFileName(target) : null;
    }

    /// <summary>
    /// A test's cleanup: SIGKILL to the host's agent (a graceful stop asserted nothing and only took time), the process
    /// groups of the instances it recorded, and every process with this host's CUTOVER_HOME (what sshd's SetEnv gave the
    /// agent and it passed on to its instances).
    /// </summary>
    public void KillAgent()
    {
        AgentProcess.Stop(AgentHome, 9);
        OwnedProcesses.KillByEnvironment("CUTOVER_HOME", AgentHome);
    }

    public IReadOnlyList<string> ReleaseDirs() =>
        Directory.Exists(Path.Combine(Root, "releases"))
            ? Directory.GetDirectories(Path.Combine(Root, "releases")).Select(d => Path.GetFileName(d)).Order(StringComparer.Ordinal).ToList()
            : [];
}

/// <summary>
/// Three real sshd servers on 127.0.0.2-4 (free ports, generated host keys, one generated client key), each with a
/// $HOME of its own through sshd's SetEnv so the hosts share no directories. Started and stopped by pid.
/// </summary>
public sealed class SshFleet : IDisposable
{
    private readonly TempDir _dir = new("cutover-fleet-");

    public SshFleet()
    {
        Directory.CreateDirectory("/run/sshd");
        File.SetUnixFileMode("/run/sshd", (UnixFileMode)Convert.ToInt32("755", 8));
        Run("ssh-keygen", "-q", "-t", "ed25519", "-f", ClientKey, "-N", "", "-C", "cutover-tests");
        for (var i = 0; i < 3; i++)
        {
            var address = $"127.0.0.{i + 2}";
            var host = new SshHost { Address = address, Port = FreePort(address), Dir = _dir.Combine($"host{i + 1}") };
            Directory.CreateDirectory(Path.Combine(host.Dir, "etc"));
            Directory.CreateDirectory(host.Home);
            Directory.CreateDirectory(host.Root);
            Run("ssh-keygen", "-q", "-t", "ed25519", "-f", host.HostKey, "-N", "", "-C", address);
            File.WriteAllText(host.ConfigFile, $"""
                ListenAddress {address}
                Port {host.Port}
                HostKey {host.HostKey}
                PidFile {Path.Combine(host.Dir, "sshd.pid")}
                AuthorizedKeysFile {ClientKey}.pub
                StrictModes no
                UsePAM no
                PermitRootLogin yes
                PubkeyAuthentication yes
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                Subsystem sftp internal-sftp -d {host.Home}
                SetEnv HOME={host.Home} CUTOVER_HOME={host.AgentHome} CUTOVER_METRICS_LISTEN=off
                LogLevel INFO

                """);
            Hosts.Add(host);
            Start(host);
        }
        File.WriteAllLines(KnownHosts, Hosts.Select(h => h.KnownHostsLine()));
    }

    public List<SshHost> Hosts { get; } = [];
    public string ClientKey => _dir.Combine("client_key");
    public string KnownHosts => _dir.Combine("known_hosts");
    public string Path_ => _dir.Path;

    public void Start(SshHost host)
    {
        var start = new ProcessStartInfo("/usr/sbin/sshd", ["-D", "-e", "-f", host.ConfigFile])
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        var process = Process.Start(start)!;
        var log = new StreamWriter(host.Log, append: true) { AutoFlush = true };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.WriteLine(e.Data); };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        host.Sshd = process;
        Wait.Until(() =>
        {
            try
            {
                using var client = new TcpClient();
                client.Connect(IPAddress.Parse(host.Address), host.Port);
                return true;
            }
            catch (SocketException)
            {
                if (process.HasExited) throw new InvalidOperationException($"sshd for {host.Name} exited: {File.ReadAllText(host.Log)}");
                return false;
            }
        }, TimeSpan.FromSeconds(10), $"sshd for {host.Name} to listen");
    }

    /// <summary>
    /// The host "dies": its per-connection sshd processes first (so the client's sessions drop), then the listener.
    /// </summary>
    public void Kill(SshHost host)
    {
        if (host.Sshd is not { } sshd) return;
        foreach (var child in Children(sshd.Id)) Cutover.Platform.LibC.Kill(child, 9);
        Cutover.Platform.LibC.Kill(sshd.Id, 9);
        sshd.WaitForExit(5000);
        sshd.Dispose();
        host.Sshd = null;
    }

    /// <summary>Processes whose parent is <paramref name="pid"/>, from /proc.</summary>
    public static IReadOnlyList<int> Children(int pid)
    {
        var children = new List<int>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var candidate)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                if (int.Parse(fields[1]) == pid) children.Add(candidate);
            }
            catch (IOException)
            {
            }
        }
        return children;
    }

    private static int FreePort(string address)
    {
        using var listener = new TcpListener(IPAddress.Parse(address), 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void Run(string file, params string[] args)
    {
        using var process = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0) throw new InvalidOperationException($"{file} failed: {error}");
    }

    public void Dispose()
    {
        foreach (var host in Hosts) Kill(host);
        _dir.Dispose();
    }
}

/// <summary>
/// The fleet build that fleet deploys install on the hosts (README, "Fleet"): the native cutover and, in jit/, the
/// self-contained single-file JIT build. Published once per test run (the Native AOT compile is most of its time).
/// </summary>
public sealed class PublishedCutover : IDisposable
{
    /// <summary>
    /// The one build both fleet collections use (each has this fixture; a second publish would be a second Native AOT
    /// compile), removed when the test process exits.
    /// </summary>
    private static readonly Lazy<string> Shared = new(() =>
    {
        var dir = new TempDir("cutover-publish-");
        AppDomain.CurrentDomain.ProcessExit += (_, _) => dir.Dispose();
        Publish(["-r", "linux-x64", "--self-contained", "-p:PublishSingleFile=true", "-o", dir.Path]);
        return dir.Path;
    });

    /// <summary>This instance's own directory (a build <see cref="AsVersion"/> made), or null for the shared build.</summary>
    private readonly TempDir? _own;
    private readonly string _dir;

    public PublishedCutover()
    {
        _dir = Shared.Value;
        if (!File.Exists(Jit)) throw new InvalidOperationException($"dotnet publish left no {Jit}");
    }

    /// <summary>
    /// A build whose JIT half reports <paramref name="version"/> (Directory.Build.props' Version overridden), as a newer
    /// release of Cutover would, beside <paramref name="native"/>'s native binary: the JIT half is what runs `remote
    /// session` and the agent, and a second Native AOT compile would add a minute to the run.
    /// </summary>
    public static PublishedCutover AsVersion(string version, PublishedCutover native) => new(version, native);

    /// <remarks>
    /// Published from a copy of the sources, as another release's checkout would be: a publish with another Version
    /// compiles Cutover.Core and cutover again, and in the repository's obj/ it left them newer than the Native AOT
    /// compile's output, so the next publish of the repository (NativeBuildTests') ran that compile again (measured
    /// 2026-12-02: NativeBuildTests 204 s, then 462 s once the fleet's publish no longer did the compile for it). In a
    /// tree of its own it also needs no turn at <see cref="CutoverPublish.Gate"/>.
    /// </remarks>
    private PublishedCutover(string version, PublishedCutover native)
    {
        _own = new TempDir("cutover-publish-");
        _dir = _own.Path;
        using var sources = new TempDir("cutover-sources-");
        foreach (var file in new[] { "Directory.Build.props", "global.json", "Cutover.slnx" })
            File.Copy(Path.Combine(Repo.Root, file), Path.Combine(sources.Path, file));
        // src/ without what builds left in it, and the demo app Cutover.csproj embeds.
        foreach (var tree in new[] { "src", Path.Combine("examples", "hello-php") })
            AppFactory.CopyTree(Path.Combine(Repo.Root, tree), Path.Combine(sources.Path, tree),
                skip: relative => relative.Split('/') is var parts && (parts.Contains("bin") || parts.Contains("obj")));
        PublishOnce(sources.Path, ["-r", "linux-x64", "--self-contained", "-p:PublishSingleFile=true", "-p:PublishAot=false", $"-p:Version={version}", "-o", Path.GetDirectoryName(Jit)!]);
        File.Copy(native.Binary, Binary);
        File.SetUnixFileMode(Binary, File.GetUnixFileMode(native.Binary));
    }

    private static void Publish(string[] arguments)
    {
        CutoverPublish.Gate.Wait();
        try
        {
            PublishOnce(Repo.Root, arguments);
        }
        finally
        {
            CutoverPublish.Gate.Release();
        }
    }

    private static void PublishOnce(string repo, string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet", ["publish", Path.Combine(repo, "src", "Cutover", "Cutover.csproj"), "-c", "Release", .. arguments, "-nologo", "-v", "q"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(6))) throw new TimeoutException("dotnet publish took over 6 minutes");
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"dotnet publish failed: {stdout.Result}{stderr.Result}");
    }

    /// <summary>The native cutover (CUTOVER_SELF_CONTAINED names it).</summary>
    public string Binary => Path.Combine(_dir, "cutover");

    /// <summary>The JIT half, the single file that runs `remote session` and the agent.</summary>
    public string Jit => Path.Combine(_dir, "jit", "cutover");

    public void Dispose() => _own?.Dispose();
}

/// <summary>
/// The fleet tests, in two collections of about six minutes each, each with three sshd hosts of its own (the tests of
/// one collection run one at a time, sharing its hosts), beside the other test classes rather than after them all:
/// with DisableParallelization they were 9 minutes of the suite's serial tail, as one collection a 12-minute chain
/// longer than the rest of the parallel phase.
/// </summary>
[CollectionDefinition(Name)]
[RunsFor(420)]
public sealed class FleetCollection : ICollectionFixture<SshFleet>, ICollectionFixture<PublishedCutover>
{
    public const string Name = "fleet";
}

/// <inheritdoc cref="FleetCollection"/>
[CollectionDefinition(Name)]
[RunsFor(400)]
public sealed class SecondFleetCollection : ICollectionFixture<SshFleet>, ICollectionFixture<PublishedCutover>
{
    public const string Name = "fleet-2";
}
