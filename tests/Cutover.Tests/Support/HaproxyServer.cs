using System.Diagnostics;
using Cutover.BlueGreen;

namespace Cutover.Tests.Support;

/// <summary>
/// Debian's haproxy, started in the foreground by pid on a loopback port in a temp dir: a frontend that sends
/// everything to backend `app` (balance roundrobin, no servers: Cutover adds them), a backend `fixed` with
/// `balance static-rr` (servers cannot be added to it), an admin-level stats socket and a user-level one.
/// </summary>
public sealed class HaproxyServer : IDisposable
{
    private readonly TempDir _dir = new("cutover-haproxy-");
    private readonly Process _process;
    private readonly System.Text.StringBuilder _output = new();

    public HaproxyServer()
    {
        Port = HealthServer.FreePort();
        AdminSocket = _dir.Combine("admin.sock");
        UserSocket = _dir.Combine("user.sock");
        var config = _dir.Combine("haproxy.cfg");
        File.WriteAllText(config, $"""
            global
              stats socket {AdminSocket} mode 600 level admin
              stats socket {UserSocket} mode 600 level user
            defaults
              mode http
              timeout connect 2s
              timeout client 30s
              timeout server 30s
            frontend web
              bind 127.0.0.1:{Port}
              default_backend app
            backend app
              balance roundrobin
            backend fixed
              balance static-rr
            """ + "\n");
        _process = Process.Start(new ProcessStartInfo("/usr/sbin/haproxy", ["-db", "-f", config]) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true })!;
        _process.ErrorDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.OutputDataReceived += (_, e) => { lock (_output) _output.AppendLine(e.Data); };
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
        Wait.Until(() => File.Exists(AdminSocket) || _process.HasExited, TimeSpan.FromSeconds(10), "haproxy's admin socket");
        if (_process.HasExited) { _process.WaitForExit(); throw new InvalidOperationException($"haproxy exited with {_process.ExitCode}: {_output}"); }
        StartTime = ReadStartTime();
    }

    public int Port { get; }
    public string AdminSocket { get; }
    public string UserSocket { get; }
    public int Pid => _process.Id;
    public string Url => $"http://127.0.0.1:{Port}/";

    /// <summary>The process's start time in clock ticks since boot (/proc/pid/stat field 22): a reload or restart changes it.</summary>
    public long StartTime { get; }

    public long ReadStartTime()
    {
        var stat = File.ReadAllText($"/proc/{Pid}/stat");
        return long.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19]);
    }

    public bool Running => !_process.HasExited;

    /// <summary>The names of backend <paramref name="backend"/>'s servers, as HAProxy lists them now.</summary>
    public async Task<string[]> ServersAsync(string backend = "app") =>
        (await new HaproxyRuntimeApi(AdminSocket).ShowStatAsync(backend, CancellationToken.None))
            .Select(r => r["svname"]).Where(n => n != "BACKEND").Order().ToArray();

    public void Dispose()
    {
        if (!_process.HasExited) { _process.Kill(entireProcessTree: true); _process.WaitForExit(); }
        _process.Dispose();
        _dir.Dispose();
    }
}
