using System.Diagnostics;

namespace Cutover.Tests.Support;

/// <summary>
/// A real dockerd (Debian's docker.io) for the container tests: its own data root, exec root and socket in a temp
/// dir, vfs storage, no iptables changes and no docker0 (so it leaves the machine's firewall and other daemons
/// alone), and an address pool of its own. Images are made without a registry: a busybox-static root filesystem
/// with `docker import`. Started and stopped by pid.
/// </summary>
public sealed class DockerEngine : IAsyncDisposable
{
    private readonly string _dir;
    private readonly Process _daemon;

    private DockerEngine(string dir, Process daemon)
    {
        _dir = dir;
        _daemon = daemon;
    }

    public string Socket => Path.Combine(_dir, "docker.sock");
    public string Host => "unix://" + Socket;

    public static async Task<DockerEngine> StartAsync()
    {
        if (!File.Exists("/usr/sbin/dockerd") && !File.Exists("/usr/bin/dockerd"))
            throw new InvalidOperationException("dockerd is needed (apt-get install docker.io busybox-static); ./test.sh installs it");
        // Short path: unix socket paths are limited to 108 bytes.
        var dir = Directory.CreateTempSubdirectory("cdk-").FullName;
        var pool = $"10.{200 + Random.Shared.Next(50)}.{Random.Shared.Next(0, 16) * 16}.0/20";
        var start = new ProcessStartInfo("dockerd") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in new[]
                 {
                     "--data-root", Path.Combine(dir, "data"), "--exec-root", Path.Combine(dir, "exec"), "--pidfile", Path.Combine(dir, "dockerd.pid"),
                     "-H", "unix://" + Path.Combine(dir, "docker.sock"), "--storage-driver=vfs", "--iptables=false", "--ip6tables=false", "--bridge=none",
                     "--default-address-pool", $"base={pool},size=24", "--log-level=warn",
                 })
            start.ArgumentList.Add(arg);
        var daemon = Process.Start(start)!;
        var log = new System.Text.StringBuilder();
        daemon.OutputDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        daemon.ErrorDataReceived += (_, e) => { lock (log) log.AppendLine(e.Data); };
        daemon.BeginOutputReadLine();
        daemon.BeginErrorReadLine();
        var engine = new DockerEngine(dir, daemon);
        var answered = await Wait.WithinAsync(async () =>
            daemon.HasExited || (await engine.DockerAsync(["version", "--format", "{{.Server.Version}}"], check: false)).Code == 0,
            TimeSpan.FromSeconds(60), TimeSpan.FromMilliseconds(200));
        if (!answered || daemon.HasExited)
        {
            string text;
            lock (log) text = log.ToString();
            throw new InvalidOperationException($"dockerd did not start: {text}");
        }
        return engine;
    }

    /// <summary>
    /// An image `name` whose busybox httpd serves /www on port 3000: index.html and health answer with the
    /// version; <paramref name="healthy"/> false leaves out /www/healthy, which the test healthcheck looks for.
    /// </summary>
    public async Task ImportAppImageAsync(string name, string version, bool healthy = true)
    {
        var rootfs = Path.Combine(_dir, "rootfs-" + Guid.NewGuid().ToString("N")[..8]);
        foreach (var sub in new[] { "bin", "www", "etc", "tmp" }) Directory.CreateDirectory(Path.Combine(rootfs, sub));
        File.Copy("/bin/busybox", Path.Combine(rootfs, "bin", "busybox"));
        foreach (var applet in new[] { "sh", "httpd", "wget", "cat", "sleep", "test", "ls", "kill" })
            File.CreateSymbolicLink(Path.Combine(rootfs, "bin", applet), "busybox");
        await File.WriteAllTextAsync(Path.Combine(rootfs, "www", "index.html"), $"hello from {version} (container)\n");
        await File.WriteAllTextAsync(Path.Combine(rootfs, "www", "health"), $"ok {version}\n");
        if (healthy) await File.WriteAllTextAsync(Path.Combine(rootfs, "www", "healthy"), "yes\n");
        await File.WriteAllTextAsync(Path.Combine(rootfs, "etc", "passwd"), "root:x:0:0:root:/:/bin/sh\n");
        var tar = Path.Combine(_dir, Path.GetFileName(rootfs) + ".tar");
        await RunAsync("tar", ["-C", rootfs, "-cf", tar, "."]);
        await DockerAsync(["import", "-c", "ENV PATH=/bin", "-c", "CMD [\"httpd\", \"-f\", \"-p\", \"3000\", \"-h\", \"/www\"]", tar, name]);
        File.Delete(tar);
        Directory.Delete(rootfs, recursive: true);
    }

    public async Task<(int Code, string Output)> DockerAsync(string[] args, bool check = true)
    {
        var (code, output) = await RunAsync("docker", ["-H", Host, .. args], check: false);
        if (check && code != 0) throw new InvalidOperationException($"docker {string.Join(' ', args)} failed ({code}): {output}");
        return (code, output);
    }

    private static async Task<(int, string)> RunAsync(string file, string[] args, bool check = true)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        // Debian's client first: the machine may also have a newer one on PATH that this daemon's API predates.
        if (file == "docker" && File.Exists("/usr/bin/docker")) start.FileName = "/usr/bin/docker";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var output = (await stdout) + (await stderr);
        if (check && process.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({process.ExitCode}): {output}");
        return (process.ExitCode, output);
    }

    public async ValueTask DisposeAsync()
    {
        await DockerAsync(["swarm", "leave", "--force"], check: false);
        var (_, ids) = await DockerAsync(["ps", "-aq"], check: false);
        var containers = ids.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (containers.Length > 0) await DockerAsync(["rm", "-f", .. containers], check: false);
        // The apps' networks are bridges on the host, which outlive the daemon: left behind, every run's used up address
        // pools until a later daemon found none free ("could not find an available, non-overlapping IPv4 address pool").
        await DockerAsync(["network", "prune", "--force"], check: false);
        if (!_daemon.HasExited)
        {
            Cutover.Platform.LibC.Kill(_daemon.Id, 15);
            if (!_daemon.WaitForExit(20_000)) _daemon.Kill(entireProcessTree: true);
        }
        _daemon.Dispose();
        // The daemon leaves its network namespace mounts behind; unmount before removing the tree.
        await RunAsync("sh", ["-c", $"grep -o ' {_dir}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l"], check: false);
        try { Cutover.Releases.ReleaseStore.DeleteTree(_dir); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
