using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Cutover.Probe;
using Cutover.Tests.Support;

namespace Cutover.Tests.Probe;

/// <summary>
/// A raw TCP backend that answers keep-alive HTTP/1.1 and fails request number k with a 500 when k % 10 == 3
/// and by dropping the connection (RST) when k % 10 == 7: the probe must count exactly those.
/// </summary>
public sealed class FlakyBackend : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private int _count;

    public FlakyBackend()
    {
        _listener.Start();
        _ = Task.Run(AcceptAsync);
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;
    public int Count => Volatile.Read(ref _count);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try { socket = await _listener.AcceptSocketAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        var buffer = new byte[4096];
        var pending = "";
        try
        {
            while (true)
            {
                var n = await socket.ReceiveAsync(buffer, SocketFlags.None);
                if (n == 0) return;
                pending += Encoding.ASCII.GetString(buffer, 0, n);
                int end;
                while ((end = pending.IndexOf("\r\n\r\n", StringComparison.Ordinal)) >= 0)
                {
                    pending = pending[(end + 4)..];
                    var k = Interlocked.Increment(ref _count);
                    if (k % 10 == 7)
                    {
                        socket.LingerState = new LingerOption(true, 0); // RST, no response at all
                        socket.Close();
                        return;
                    }
                    var (status, body) = k % 10 == 3 ? ("500 Internal Server Error", "fail") : ("200 OK", "ok");
                    await socket.SendAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Length: {body.Length}\r\n\r\n{body}"), SocketFlags.None);
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            socket.Dispose();
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
    }
}

public class LoadProbeTests
{
    [Fact]
    public async Task The_probe_counts_exactly_the_failures_the_backend_made()
    {
        using var backend = new FlakyBackend();
        var report = await LoadProbe.RunAsync(new ProbeOptions
        {
            Url = new Uri($"http://127.0.0.1:{backend.Port}/"),
            Rate = 200,
            Duration = TimeSpan.FromSeconds(2),
            Connections = 8,
        }, CancellationToken.None);

        Assert.Equal(400, report.Requests);
        Assert.Equal(400, backend.Count);
        Assert.Equal(40, report.Failures["status_5xx"]);
        Assert.Equal(40, report.Failures["reset"]);
        Assert.Equal(0, report.Failures["refused"]);
        Assert.Equal(0, report.Failures["timeout"]);
        Assert.Equal(0, report.Failures["other_status"]);
        Assert.Equal(80, report.Failed);
        Assert.True(report.LatencyMs.P50 <= report.LatencyMs.P99 && report.LatencyMs.P99 <= report.LatencyMs.Max);
        Assert.NotNull(report.WorstWindow);
        Assert.True(report.WorstWindow!.Failed >= 40);
        // 100 ms buckets by scheduled time: 20 of them at 200/s, 20 requests each, holding every failure.
        Assert.Equal(20, report.Buckets.Count);
        Assert.All(report.Buckets.Select((b, i) => (b, i)), x => Assert.Equal((x.i * 100.0, 20L), (x.b.StartMs, x.b.Requests)));
        Assert.Equal(80, report.Buckets.Sum(b => b.Failed));
        Assert.All(report.Buckets, b => Assert.True(b.P50Ms <= b.P99Ms && b.P99Ms <= report.LatencyMs.Max));
    }

    [Fact]
    public async Task A_closed_port_counts_as_refused_at_the_fixed_rate()
    {
        var port = HealthServer.FreePort();
        var report = await LoadProbe.RunAsync(new ProbeOptions
        {
            Url = new Uri($"http://127.0.0.1:{port}/"),
            Rate = 50,
            Duration = TimeSpan.FromSeconds(1),
        }, CancellationToken.None);
        Assert.Equal(50, report.Requests);
        Assert.Equal(50, report.Failures["refused"]);
    }

    [Fact]
    public async Task A_stall_shows_as_latency_not_as_fewer_requests()
    {
        var stalled = 0;
        using var server = new HealthServer(() =>
        {
            if (Interlocked.Increment(ref stalled) == 20) Thread.Sleep(1000);
            return 200;
        });
        var report = await LoadProbe.RunAsync(new ProbeOptions
        {
            Url = new Uri(server.Url),
            Rate = 100,
            Duration = TimeSpan.FromSeconds(2),
            Connections = 1,
        }, CancellationToken.None);
        Assert.Equal(200, report.Requests);
        Assert.Equal(0, report.Failed);
        // with one connection, everything scheduled during the stall waits and that wait counts
        Assert.True(report.LatencyMs.Max >= 900, $"max {report.LatencyMs.Max} ms");
        Assert.True(report.LatencyMs.P90 >= 100, $"p90 {report.LatencyMs.P90} ms");
    }

    [Fact]
    public async Task The_cli_prints_json_and_exits_non_zero_on_failures()
    {
        using var backend = new FlakyBackend();
        using var dir = new TempDir();
        var failing = await CutoverCli.RunAsync(dir.Path, "probe", $"http://127.0.0.1:{backend.Port}/", "--rate", "100", "--duration", "1s", "--json");
        Assert.Equal(1, failing.ExitCode);
        using var doc = JsonDocument.Parse(failing.Stdout);
        Assert.Equal(100, doc.RootElement.GetProperty("requests").GetInt64());
        Assert.Equal(20, doc.RootElement.GetProperty("failed").GetInt64());
        Assert.Equal(10, doc.RootElement.GetProperty("failures").GetProperty("status_5xx").GetInt64());
        Assert.True(doc.RootElement.GetProperty("latency_ms").GetProperty("p99").GetDouble() >= 0);

        var allowed = await CutoverCli.RunAsync(dir.Path, "probe", $"http://127.0.0.1:{backend.Port}/", "--rate", "100", "--duration", "1s", "--allow-failures", "20");
        Assert.True(allowed.ExitCode == 0, allowed.All);
        Assert.Contains("probe: 100 requests", allowed.Stdout);
        Assert.Contains("status_5xx 10", allowed.Stdout);
    }
}
