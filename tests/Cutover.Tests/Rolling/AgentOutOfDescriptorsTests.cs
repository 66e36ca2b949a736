using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Cutover.Tests.Support;

namespace Cutover.Tests.Rolling;

/// <summary>
/// The agent near the end of its file descriptors (its RLIMIT_NOFILE lowered under it with prlimit(1)). Out of them,
/// .NET fails fast ("Out of memory.") when it starts a thread (it opens /proc/self/status), killing the agent with its
/// instances orphaned. The proxy's sockets leave the top numbers free (Platform/Epoll/DescriptorReserve): a client
/// that would land there is closed at once and accepting pauses, without spinning; once descriptors are back, it serves.
/// </summary>
[Collection(Serial.Name)]
public sealed class AgentOutOfDescriptorsTests
{
    [Fact]
    public async Task Near_the_descriptor_limit_the_agent_refuses_clients_lives_and_serves_again()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        using var bed = new AgentBed();
        var port = HealthServer.FreePort();
        bed.WriteVersion("1");
        var deployed = await bed.Cli("deploy", bed.Source, "-c", bed.WriteNodeConfig(port, "rolling"));
        Assert.True(deployed.ExitCode == 0, deployed.All);
        var pid = int.Parse(File.ReadAllText(Path.Combine(bed.Home, "agent.pid")).Trim(), CultureInfo.InvariantCulture);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(20) };
        Assert.StartsWith("hello from 1", await http.GetStringAsync($"http://127.0.0.1:{port}/", timeout.Token));

        // A few descriptors to spare, then more clients than that. The agent asks its limit once a second.
        var open = Directory.GetFiles($"/proc/{pid}/fd").Length;
        var limit = SoftLimit(pid);
        Prlimit(pid, open + 8);
        await Task.Delay(TimeSpan.FromSeconds(1.2), timeout.Token);
        var clients = new List<TcpClient>();
        var refused = 0;
        try
        {
            for (var i = 0; i < 40; i++)
            {
                var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token); // the kernel completes it, accepted or not
                clients.Add(client);
            }
            var before = SocketThreadsCpu(pid);
            // Each refused client reads its end at once; one still queued (or accepted into a free low number) does not.
            var reads = clients.Select(async c =>
            {
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
                wait.CancelAfter(TimeSpan.FromSeconds(4));
                try { return await c.GetStream().ReadAsync(new byte[1], wait.Token) == 0; }
                catch (OperationCanceledException) { return false; }
                catch (IOException) { return true; }
            }).ToList();
            refused = (await Task.WhenAll(reads)).Count(r => r);
            var cpu = SocketThreadsCpu(pid) - before;
            // Spinning on the refusals (or on EMFILE) would keep a socket thread busy the whole 4 s; a pause between
            // tries costs next to nothing.
            Assert.True(cpu < TimeSpan.FromMilliseconds(500), $"the proxy's socket threads used {cpu.TotalMilliseconds} ms of CPU in 4 s near the descriptor limit");
            Assert.True(refused >= 20, $"{refused} of 40 clients were refused; the rest would have taken the last descriptors");
            Assert.True(File.ReadAllText(Path.Combine(bed.Home, "agent.stderr.log")).Length == 0, File.ReadAllText(Path.Combine(bed.Home, "agent.stderr.log")));
        }
        finally
        {
            foreach (var client in clients) client.Dispose();
        }

        // Descriptors back: it serves again.
        Prlimit(pid, limit);
        await Task.Delay(TimeSpan.FromSeconds(1.2), timeout.Token);
        var served = 0;
        try
        {
            for (var i = 0; i < 20; i++)
                if ((await http.GetStringAsync($"http://127.0.0.1:{port}/", timeout.Token)).StartsWith("hello from 1", StringComparison.Ordinal)) served++;
        }
        catch (HttpRequestException e)
        {
            Assert.Fail($"{e.Message} after the descriptors were back ({refused} refused before); agent alive: {File.Exists($"/proc/{pid}/status") && !File.ReadAllText($"/proc/{pid}/status").Contains("zombie", StringComparison.Ordinal)}\nagent.log:\n{File.ReadAllText(Path.Combine(bed.Home, "agent.log"))}\nstderr:\n{string.Join("\n", Directory.GetFiles(bed.Home, "*stderr*").Select(File.ReadAllText))}");
        }
        Assert.Equal(20, served);
    }

    /// <summary>Sets the soft limit only (raising it again up to the hard limit needs no privilege).</summary>
    private static void Prlimit(int pid, long files)
    {
        using var prlimit = Process.Start(new ProcessStartInfo("prlimit", ["--pid", pid.ToString(CultureInfo.InvariantCulture), $"--nofile={files}:"]) { RedirectStandardError = true })!;
        var error = prlimit.StandardError.ReadToEnd();
        prlimit.WaitForExit();
        Assert.True(prlimit.ExitCode == 0, $"prlimit: {error}");
    }

    private static long SoftLimit(int pid) => long.Parse(File.ReadLines($"/proc/{pid}/limits").First(l => l.StartsWith("Max open files", StringComparison.Ordinal))
        .Split(' ', StringSplitOptions.RemoveEmptyEntries)[3], CultureInfo.InvariantCulture);

    /// <summary>User + system time of the proxy's socket threads ("cutover io N"), from /proc/PID/task/*/stat (ticks of 1/100 s).</summary>
    private static TimeSpan SocketThreadsCpu(int pid) => TimeSpan.FromMilliseconds(10 * Directory.GetDirectories($"/proc/{pid}/task")
        .Where(t => File.ReadAllText(Path.Combine(t, "comm")).StartsWith("cutover io", StringComparison.Ordinal))
        .Sum(t =>
        {
            var stat = File.ReadAllText(Path.Combine(t, "stat"));
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }));
}
