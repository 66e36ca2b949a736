using System.Runtime.InteropServices;

namespace Cutover.Platform;

/// <summary>
/// A process this one did not start, held by a pidfd (pidfd_open(2), Linux 5.3): after an agent upgrade the
/// instances are children of the old agent (then of init or systemd), not of the new one, so Process.WaitForExit
/// and waitpid cannot see them. The pidfd turns readable when the process exits, and signals sent through it
/// (pidfd_send_signal(2)) can never reach a later process that reused the pid. For the agent upgrade (issue 12):
/// InstanceProcess.Adopt watches a handed-over instance with it.
///
/// The exit status is NOT available: waitid(P_PIDFD) works only for the caller's own children (ECHILD otherwise,
/// see <see cref="TryReadExitCode"/>) and the parent that reaps the process keeps the status. The agent learns it
/// from <see cref="ExitStatusFile"/> instead.
/// </summary>
public sealed class ProcessWatch : IDisposable
{
    private readonly SafePidFd _pidFd;

    private ProcessWatch(int pid, SafePidFd pidFd)
    {
        Pid = pid;
        _pidFd = pidFd;
    }

    public int Pid { get; }

    /// <summary>The process <paramref name="pid"/>, or null when there is none (already exited and reaped).</summary>
    public static ProcessWatch? TryOpen(int pid)
    {
        if (pid <= 0) throw new ArgumentOutOfRangeException(nameof(pid), pid, "a pid is a positive number");
        var fd = LibC.PidFdOpen(pid);
        return fd < 0 ? null : new ProcessWatch(pid, new SafePidFd(fd));
    }

    /// <summary>True once the process has exited (a zombie counts: it runs no more).</summary>
    public bool HasExited => LibC.PollReadable(FdValue, timeoutMilliseconds: 0);

    /// <summary>
    /// Completes when the process exits. A pidfd is not a socket, so .NET's epoll loop cannot wait on it: a
    /// long-running task polls it in 100 ms slices, which is also how soon cancellation is heard.
    /// </summary>
    public Task WaitForExitAsync(CancellationToken cancellationToken) => Task.Factory.StartNew(() =>
    {
        // The reference keeps the descriptor from being closed (and its number reused) under a Dispose meanwhile.
        var added = false;
        _pidFd.DangerousAddRef(ref added);
        try
        {
            while (!LibC.PollReadable(FdValue, timeoutMilliseconds: 100)) cancellationToken.ThrowIfCancellationRequested();
        }
        finally
        {
            if (added) _pidFd.DangerousRelease();
        }
    }, cancellationToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>
    /// Signals this very process, never a successor with the same pid. False when it has already exited.
    /// (A process group cannot be signalled through a pidfd: for kill(-pgid) check <see cref="HasExited"/> of the
    /// group leader first; while the leader has not been reaped its pid, and so the group id, cannot be reused.)
    /// </summary>
    public bool Signal(int signal) => LibC.PidFdSendSignal(FdValue, signal);

    /// <summary>
    /// waitid(P_PIDFD, WEXITED|WNOHANG|WNOWAIT): the exit code (128 + signal for a signal) of an exited child of
    /// this process; null for a process that has not exited or is not our child (ECHILD: the kernel gives the
    /// status only to the parent). Even for our own children this races with .NET, which reaps every child it
    /// started on SIGCHLD (Process.ExitCode is the place for those): this is for a child started some other way.
    /// </summary>
    public int? TryReadExitCode() => LibC.PidFdExitCode(FdValue);

    private int FdValue => (int)_pidFd.DangerousGetHandle();

    public void Dispose() => _pidFd.Dispose();

    private sealed class SafePidFd : Microsoft.Win32.SafeHandles.SafeHandleZeroOrMinusOneIsInvalid
    {
        public SafePidFd(int fd) : base(ownsHandle: true) => SetHandle(fd);

        protected override bool ReleaseHandle()
        {
            LibC.Close((int)handle);
            return true;
        }
    }
}

internal static unsafe partial class LibC
{
    // New syscalls share one number on every architecture (since 5.1, asm-generic), so no per-arch table.
    private const long SysPidfdSendSignal = 424, SysPidfdOpen = 434;
    private const int ESrchErrno = 3, EChild = 10;

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall2(long number, long a, long b);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall4(long number, long a, long b, long c, long d);

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int PollNative(PollFd* fds, nuint count, int timeoutMilliseconds);

    [LibraryImport("libc", EntryPoint = "waitid", SetLastError = true)]
    private static partial int WaitIdNative(int idType, int id, byte* info, int options);

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    /// <summary>pidfd_open(pid, 0), close-on-exec by definition; -1 when there is no such process.</summary>
    internal static int PidFdOpen(int pid)
    {
        var fd = Syscall2(SysPidfdOpen, pid, 0);
        if (fd >= 0) return (int)fd;
        if (Marshal.GetLastPInvokeError() == ESrchErrno) return -1;
        throw Error($"pidfd_open {pid}");
    }

    internal static bool PidFdSendSignal(int pidFd, int signal)
    {
        if (Syscall4(SysPidfdSendSignal, pidFd, signal, 0, 0) == 0) return true;
        if (Marshal.GetLastPInvokeError() == ESrchErrno) return false;
        throw Error($"pidfd_send_signal {signal}");
    }

    internal static bool PollReadable(int fd, int timeoutMilliseconds)
    {
        const short PollIn = 1;
        var entry = new PollFd { Fd = fd, Events = PollIn };
        while (true)
        {
            var n = PollNative(&entry, 1, timeoutMilliseconds);
            if (n >= 0) return n > 0;
            if (Marshal.GetLastPInvokeError() != EIntr) throw Error("poll");
        }
    }

    internal static int? PidFdExitCode(int pidFd)
    {
        const int PPidfd = 3, WExited = 4, WNoHang = 1, WNoWait = 0x01000000;
        const int CldExited = 1;
        var info = stackalloc byte[128]; // siginfo_t
        new Span<byte>(info, 128).Clear();
        if (WaitIdNative(PPidfd, pidFd, info, WExited | WNoHang | WNoWait) != 0)
        {
            if (Marshal.GetLastPInvokeError() == EChild) return null;
            throw Error("waitid");
        }
        // siginfo_t on LP64 for SIGCHLD: si_signo, si_errno, si_code, padding, then si_pid at 16, si_uid, si_status at 24.
        var pid = *(int*)(info + 16);
        if (pid == 0) return null; // WNOHANG: still running
        var code = *(int*)(info + 8);
        var status = *(int*)(info + 24);
        return code == CldExited ? status : 128 + status;
    }
}
