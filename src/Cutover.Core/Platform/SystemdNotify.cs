using System.Globalization;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Cutover.Platform;

/// <summary>
/// sd_notify(3) spoken directly: one datagram of newline-separated KEY=VALUE lines to the AF_UNIX socket named by
/// NOTIFY_SOCKET (a path, or '@' for Linux's abstract namespace). Without NOTIFY_SOCKET (not under systemd, or
/// Type= is not notify) every call does nothing. For the agent (issue 12): READY=1 when the
/// agent serves, RELOADING=1 + MONOTONIC_USEC= when ExecReload starts an upgrade (Type=notify-reload requires both),
/// MAINPID= naming the new agent (needs NotifyAccess=all, since the message comes from a process systemd does not
/// yet consider the main one), EXTEND_TIMEOUT_USEC= while a long handover runs, STATUS= for `systemctl status`.
///
/// Not Microsoft.Extensions.Hosting.Systemd (11.0.0 in the package list, and already in the ASP.NET Core shared
/// framework we reference): its wire format is the same (one datagram, '@' -> NUL), and `new ServiceState("MAINPID=..")`
/// could carry any line, but its SystemdNotifier reads NOTIFY_SOCKET only from the environment (the path
/// constructor is internal), so tests would have to set a process-wide variable under parallel tests; it is
/// synchronous without a token, checks nothing (a newline in STATUS= becomes a second assignment), has no
/// MONOTONIC_USEC; and UseSystemd() brings SystemdLifetime, which sends READY=1 when the generic host starts,
/// while the new agent must say READY=1 (with MAINPID=) only once it holds the listeners. The wiring needs
/// the lines, not the lifetime: these ~40 lines are that.
/// </summary>
public sealed class SystemdNotify : IDisposable
{
    private readonly Socket? _socket;
    private readonly UnixDomainSocketEndPoint? _target;

    /// <param name="notifySocket">The value of NOTIFY_SOCKET, or null/empty for "not under systemd".</param>
    public SystemdNotify(string? notifySocket)
    {
        if (string.IsNullOrEmpty(notifySocket)) return;
        _target = notifySocket[0] switch
        {
            '/' => new UnixDomainSocketEndPoint(notifySocket),
            // systemd writes the abstract namespace's leading NUL as '@'.
            '@' when notifySocket.Length > 1 => new UnixDomainSocketEndPoint("\0" + notifySocket[1..]),
            _ => throw new ArgumentException(
                $"NOTIFY_SOCKET '{notifySocket}' is neither a path nor an @abstract socket (vsock is not supported)", nameof(notifySocket)),
        };
        _socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    }

    /// <summary>From this process's NOTIFY_SOCKET.</summary>
    public static SystemdNotify FromEnvironment() => new(Environment.GetEnvironmentVariable("NOTIFY_SOCKET"));

    /// <summary>Whether anything is listening for these (NOTIFY_SOCKET was set).</summary>
    public bool Enabled => _socket is not null;

    public Task ReadyAsync(CancellationToken cancellationToken) => SendAsync(["READY=1"], cancellationToken);

    /// <summary>RELOADING=1 with the CLOCK_MONOTONIC time, which systemd uses to tell this reload from an older one.</summary>
    public Task ReloadingAsync(CancellationToken cancellationToken) =>
        SendAsync(["RELOADING=1", $"MONOTONIC_USEC={MonotonicMicroseconds().ToString(CultureInfo.InvariantCulture)}"], cancellationToken);

    public Task StoppingAsync(CancellationToken cancellationToken) => SendAsync(["STOPPING=1"], cancellationToken);

    /// <summary>The service's main process is now <paramref name="pid"/> (the new agent), sent with READY=1 so systemd never sees the one without the other.</summary>
    public Task MainPidReadyAsync(int pid, CancellationToken cancellationToken)
    {
        if (pid <= 0) throw new ArgumentOutOfRangeException(nameof(pid), pid, "a pid is a positive number");
        return SendAsync([$"MAINPID={pid.ToString(CultureInfo.InvariantCulture)}", "READY=1"], cancellationToken);
    }

    public Task StatusAsync(string status, CancellationToken cancellationToken) => SendAsync([$"STATUS={status}"], cancellationToken);

    /// <summary>Asks for <paramref name="extension"/> more before systemd's start/reload/stop timeout fires.</summary>
    public Task ExtendTimeoutAsync(TimeSpan extension, CancellationToken cancellationToken)
    {
        if (extension <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(extension), extension, "an extension is a positive time");
        var microseconds = (long)(extension.Ticks / (TimeSpan.TicksPerMillisecond / 1000));
        return SendAsync([$"EXTEND_TIMEOUT_USEC={microseconds.ToString(CultureInfo.InvariantCulture)}"], cancellationToken);
    }

    /// <summary>
    /// One datagram of the given assignments. A newline inside one would be read by systemd as a second
    /// assignment (a STATUS= that says MAINPID=...), so it is refused.
    /// </summary>
    public async Task SendAsync(IReadOnlyList<string> assignments, CancellationToken cancellationToken)
    {
        foreach (var line in assignments)
        {
            if (line.Contains('\n') || !line.Contains('='))
                throw new ArgumentException($"'{line.ReplaceLineEndings(" ")}' is not one KEY=VALUE line", nameof(assignments));
        }
        if (_socket is null) return;
        var datagram = Encoding.UTF8.GetBytes(string.Join('\n', assignments) + "\n");
        await _socket.SendToAsync(datagram, SocketFlags.None, _target!, cancellationToken);
    }

    /// <summary>CLOCK_MONOTONIC in microseconds, the clock MONOTONIC_USEC= is read against.</summary>
    public static long MonotonicMicroseconds() => LibC.MonotonicNanoseconds() / 1000;

    public void Dispose() => _socket?.Dispose();
}

internal static unsafe partial class LibC
{
    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport("libc", EntryPoint = "clock_gettime", SetLastError = true)]
    private static partial int ClockGetTimeNative(int clock, TimeSpec* time);

    internal static long MonotonicNanoseconds()
    {
        const int ClockMonotonic = 1;
        TimeSpec time;
        if (ClockGetTimeNative(ClockMonotonic, &time) != 0) throw Error("clock_gettime");
        return time.Seconds * 1_000_000_000L + time.Nanoseconds;
    }
}
