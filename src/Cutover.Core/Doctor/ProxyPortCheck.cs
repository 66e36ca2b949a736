using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Cutover.Agent;

namespace Cutover.Doctor;

/// <summary>
/// proxy.listen must be free, or held by the agent (which serves this app there). Free is tried by binding the
/// address for a moment; the holder is the process with the listening socket's inode among its fds.
/// </summary>
public sealed class ProxyPortCheck(string app, IPEndPoint listen) : IDoctorCheck
{
    public string Name => "proxy.listen";

    public async Task<DoctorFinding> RunAsync(CancellationToken cancellationToken)
    {
        using (var socket = new Socket(listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp))
        {
            try
            {
                socket.Bind(listen);
                return DoctorFinding.Ok(Name, $"{listen} is free");
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
            }
            catch (SocketException e)
            {
                return DoctorFinding.Error(Name, $"{listen} cannot be bound: {e.Message}", "use an address of this machine and, below 1024, run the agent as root or with CAP_NET_BIND_SERVICE");
            }
        }
        var holders = Holders(listen.Port);
        using var client = new AgentClient(AgentHome.FromEnvironment());
        var agentPid = await client.IsRunningAsync(cancellationToken) ? (await client.InfoAsync(cancellationToken)).Pid : (int?)null;
        if (agentPid is { } pid && holders.Contains(pid))
            return DoctorFinding.Ok(Name, $"{listen} is held by the agent (pid {pid}) that serves {app}");
        var who = holders.Count > 0 ? string.Join(", ", holders.Select(p => $"pid {p} ({Command(p)})")) : "another process (not visible from here)";
        return DoctorFinding.Error(Name, $"{listen} is held by {who}, not by the agent", $"stop that process or choose another proxy.listen");
    }

    /// <summary>The pids holding a listening TCP socket on <paramref name="port"/>, from /proc/net/tcp{,6} and /proc/*/fd.</summary>
    private static List<int> Holders(int port)
    {
        const string Listen = "0A";
        var inodes = new HashSet<string>();
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(table)) continue;
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 10 || f[3] != Listen) continue;
                var local = f[1];
                if (int.Parse(local[(local.LastIndexOf(':') + 1)..], NumberStyles.HexNumber) == port) inodes.Add($"socket:[{f[9]}]");
            }
        }
        var holders = new List<int>();
        if (inodes.Count == 0) return holders;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                foreach (var fd in Directory.EnumerateFiles(Path.Combine(dir, "fd")))
                    if (new FileInfo(fd).LinkTarget is { } target && inodes.Contains(target))
                    {
                        holders.Add(pid);
                        break;
                    }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        return holders;
    }

    private static string Command(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim();
        }
        catch (IOException)
        {
            return "gone";
        }
    }
}
