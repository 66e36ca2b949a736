using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Cutover.Platform;
using Cutover.Tests.Support;

namespace Cutover.Tests.Platform;

/// <summary>A bound AF_UNIX datagram socket stands in for systemd: on the wire, that is all systemd is.</summary>
public class SystemdNotifyTests
{
    [Fact]
    public async Task Ready_main_pid_status_stopping_and_timeout_extension_arrive_as_systemd_reads_them()
    {
        using var dir = new TempDir();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var systemd = Bind(dir.Combine("notify"));
        using var notify = new SystemdNotify(dir.Combine("notify"));
        Assert.True(notify.Enabled);

        await notify.ReadyAsync(timeout.Token);
        Assert.Equal("READY=1\n", await ReceiveAsync(systemd, timeout.Token));
        await notify.MainPidReadyAsync(4242, timeout.Token);
        Assert.Equal("MAINPID=4242\nREADY=1\n", await ReceiveAsync(systemd, timeout.Token));
        await notify.StatusAsync("handing 3 listeners to pid 4242", timeout.Token);
        Assert.Equal("STATUS=handing 3 listeners to pid 4242\n", await ReceiveAsync(systemd, timeout.Token));
        await notify.ExtendTimeoutAsync(TimeSpan.FromSeconds(5), timeout.Token);
        Assert.Equal("EXTEND_TIMEOUT_USEC=5000000\n", await ReceiveAsync(systemd, timeout.Token));
        await notify.StoppingAsync(timeout.Token);
        Assert.Equal("STOPPING=1\n", await ReceiveAsync(systemd, timeout.Token));
    }

    [Fact]
    public async Task Reloading_carries_the_monotonic_clock_of_the_moment_it_was_sent()
    {
        using var dir = new TempDir();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var systemd = Bind(dir.Combine("notify"));
        using var notify = new SystemdNotify(dir.Combine("notify"));

        // Stopwatch is CLOCK_MONOTONIC in nanoseconds on Linux: the clock systemd compares MONOTONIC_USEC with.
        Assert.Equal(1_000_000_000, Stopwatch.Frequency);
        var before = Stopwatch.GetTimestamp() / 1000;
        await notify.ReloadingAsync(timeout.Token);
        var after = Stopwatch.GetTimestamp() / 1000;
        var lines = (await ReceiveAsync(systemd, timeout.Token)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("RELOADING=1", lines[0]);
        Assert.StartsWith("MONOTONIC_USEC=", lines[1]);
        Assert.InRange(long.Parse(lines[1]["MONOTONIC_USEC=".Length..]), before, after);
    }

    [Fact]
    public async Task An_abstract_socket_written_with_an_at_sign_is_reached()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var name = $"cutover-notify-test-{Guid.NewGuid():N}";
        using var systemd = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        systemd.Bind(new UnixDomainSocketEndPoint("\0" + name));
        using var notify = new SystemdNotify("@" + name);

        await notify.ReadyAsync(timeout.Token);
        Assert.Equal("READY=1\n", await ReceiveAsync(systemd, timeout.Token));
    }

    [Fact]
    public async Task Without_notify_socket_every_call_does_nothing()
    {
        using var notify = new SystemdNotify(null);
        Assert.False(notify.Enabled);
        await notify.ReadyAsync(CancellationToken.None);
        await notify.MainPidReadyAsync(1, CancellationToken.None);
        Assert.False(new SystemdNotify("").Enabled);
    }

    [Fact]
    public async Task A_newline_inside_a_value_is_refused_before_anything_is_sent()
    {
        using var dir = new TempDir();
        using var systemd = Bind(dir.Combine("notify"));
        using var notify = new SystemdNotify(dir.Combine("notify"));

        var e = await Assert.ThrowsAsync<ArgumentException>(() => notify.StatusAsync("ok\nMAINPID=1", CancellationToken.None));
        Assert.StartsWith("'STATUS=ok MAINPID=1' is not one KEY=VALUE line", e.Message);
        Assert.Equal(0, systemd.Available); // a datagram to a local socket is queued by the time sendto returns
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => notify.ExtendTimeoutAsync(TimeSpan.Zero, CancellationToken.None));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => notify.MainPidReadyAsync(0, CancellationToken.None));
        Assert.Equal(0, systemd.Available);
    }

    [Fact]
    public void A_notify_socket_that_is_neither_a_path_nor_abstract_is_refused()
    {
        var e = Assert.Throws<ArgumentException>(() => new SystemdNotify("vsock:2:1234"));
        Assert.StartsWith("NOTIFY_SOCKET 'vsock:2:1234' is neither a path nor an @abstract socket", e.Message);
        Assert.Throws<ArgumentException>(() => new SystemdNotify("@"));
    }

    private static Socket Bind(string path)
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        return socket;
    }

    private static async Task<string> ReceiveAsync(Socket socket, CancellationToken cancellationToken)
    {
        var buffer = new byte[4096];
        var n = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }
}
