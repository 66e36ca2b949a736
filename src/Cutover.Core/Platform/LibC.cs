using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Cutover.Platform;

/// <summary>
/// The few POSIX calls .NET does not expose: rename(2) over a symlink, link(2), and fsync of a directory.
/// Everything that must be atomic or durable on disk goes through here.
/// </summary>
internal static partial class LibC
{
    private const int ORdonly = 0;
    private const int ODirectory = 0x10000; // Linux, x86_64 and arm64
    private const int OCloexec = 0x80000;

    [LibraryImport("libc", EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameNative(string oldPath, string newPath);

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkNative(string oldPath, string newPath);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncNative(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseNative(int fd);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int FlockNative(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenWithModeNative(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxNative(int dirFd, string path, int flags, uint mask, byte[] buffer);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int KillNative(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "socketpair", SetLastError = true)]
    private static partial int SocketPairNative(int domain, int type, int protocol, Span<int> fds);

    [LibraryImport("libc", EntryPoint = "getuid")]
    internal static partial uint GetUid();

    [LibraryImport("libc", EntryPoint = "sysconf")]
    private static partial long SysConfNative(int name);

    private const int ScClkTck = 2; // _SC_CLK_TCK, Linux

    /// <summary>Clock ticks per second: the unit of /proc/&lt;pid&gt;/stat's utime and stime (USER_HZ, 100 on Linux, asked not assumed).</summary>
    internal static long ClockTicksPerSecond() => SysConfNative(ScClkTck) is > 0 and var ticks ? ticks : 100;

    /// <summary>rename(2): atomically replaces <paramref name="newPath"/>, even when it is a symlink to a directory.</summary>
    public static void Rename(string oldPath, string newPath)
    {
        if (RenameNative(oldPath, newPath) != 0)
            throw Error($"rename {oldPath} -> {newPath}");
    }

    /// <summary>link(2): a second name for the same inode.</summary>
    public static void HardLink(string existing, string newPath)
    {
        if (LinkNative(existing, newPath) != 0)
            throw Error($"link {existing} -> {newPath}");
    }

    /// <summary>Makes a directory's entries (a rename, a new link) durable.</summary>
    public static void FsyncDirectory(string path)
    {
        var fd = OpenNative(path, ORdonly | ODirectory | OCloexec);
        if (fd < 0) throw Error($"open {path}");
        try
        {
            if (FsyncNative(fd) != 0) throw Error($"fsync {path}");
        }
        finally
        {
            CloseNative(fd);
        }
    }

    /// <summary>Opens (creating) a lock file; close-on-exec so hooks never inherit the lock.</summary>
    public static int OpenLockFile(string path)
    {
        const int ORdwr = 2, OCreat = 0x40;
        var fd = OpenWithModeNative(path, ORdwr | OCreat | OCloexec, Convert.ToInt32("644", 8));
        if (fd < 0) throw Error($"open {path}");
        return fd;
    }

    /// <summary>
    /// The lock file opened read-only, without creating it: enough for flock(2), and all a reader such as
    /// `cutover status` may have (the file is 0644, owned by whoever deploys).
    /// </summary>
    public static int OpenLockFileReadOnly(string path)
    {
        var fd = OpenNative(path, ORdonly | OCloexec);
        if (fd < 0) throw Error($"open {path}");
        return fd;
    }

    /// <summary>The uid owning a path (not following a final symlink), through statx(2).</summary>
    public static uint Owner(string path)
    {
        const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
        const uint StatxUid = 0x8;
        var buffer = new byte[256];
        if (StatxNative(AtFdCwd, path, AtSymlinkNoFollow, StatxUid, buffer) != 0) throw Error($"statx {path}");
        return BitConverter.ToUInt32(buffer, 20);
    }

    /// <summary>flock(LOCK_EX|LOCK_NB). The kernel drops it when the process dies, however it dies.</summary>
    public static bool TryLockExclusive(int fd)
    {
        const int LockEx = 2, LockNb = 4, EWouldBlock = 11;
        if (FlockNative(fd, LockEx | LockNb) == 0) return true;
        if (Marshal.GetLastPInvokeError() == EWouldBlock) return false;
        throw Error("flock");
    }

    /// <summary>
    /// The file type bits of lstat, through statx(2) because its struct is the same on every architecture.
    /// .NET reports fifos, sockets and devices as ordinary files, and opening a fifo would block forever.
    /// </summary>
    public static UnixFileType FileType(string path)
    {
        const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
        const uint StatxType = 0x1;
        var buffer = new byte[256];
        if (StatxNative(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0) throw Error($"statx {path}");
        return (UnixFileType)(BitConverter.ToUInt16(buffer, 28) & 0xF000);
    }

    /// <summary>kill(2); a negative pid signals the whole process group. False when nothing was there to signal.</summary>
    public static bool Kill(int pid, int signal)
    {
        const int ESrch = 3;
        if (KillNative(pid, signal) == 0) return true;
        if (Marshal.GetLastPInvokeError() == ESrch) return false;
        throw Error($"kill {pid} {signal}");
    }

    /// <summary>
    /// A connected AF_UNIX stream pair. The first end is close-on-exec (ours); the second is inheritable, for a
    /// child such as Node's IPC channel (NODE_CHANNEL_FD), and must be closed here once the child has started.
    /// </summary>
    public static (int Ours, int Theirs) InheritableSocketPair()
    {
        const int AfUnix = 1, SockStream = 1;
        Span<int> fds = stackalloc int[2];
        if (SocketPairNative(AfUnix, SockStream, 0, fds) != 0) throw Error("socketpair");
        SetCloseOnExec(fds[0]);
        return (fds[0], fds[1]);
    }

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int FcntlNative(int fd, int command, int argument);

    private static void SetCloseOnExec(int fd)
    {
        const int FSetFd = 2, FdCloexec = 1;
        if (FcntlNative(fd, FSetFd, FdCloexec) != 0) throw Error("fcntl");
    }

    /// <summary>The inode number behind a path (following symlinks), to notice a file renamed away and replaced.</summary>
    public static ulong Inode(string path) => InodeIfExists(path) ?? throw new IOException($"statx {path}: {new Win32Exception(ENoEnt).Message}", ENoEnt);

    private const int ENoEnt = 2;

    /// <summary>As <see cref="Inode(string)"/>, or null when nothing is at the path (a file renamed away a moment ago).</summary>
    public static ulong? InodeIfExists(string path)
    {
        const int AtFdCwd = -100;
        const uint StatxIno = 0x100;
        var buffer = new byte[256];
        if (StatxNative(AtFdCwd, path, 0, StatxIno, buffer) == 0) return BitConverter.ToUInt64(buffer, 32);
        if (Marshal.GetLastPInvokeError() == ENoEnt) return null;
        throw Error($"statx {path}");
    }

    /// <summary>The inode number of an open file (statx on its descriptor): the file read, whatever its name is by now.</summary>
    public static ulong Inode(Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        const int AtEmptyPath = 0x1000;
        const uint StatxIno = 0x100;
        var buffer = new byte[256];
        var added = false;
        file.DangerousAddRef(ref added);
        try
        {
            if (StatxNative((int)file.DangerousGetHandle(), "", AtEmptyPath, StatxIno, buffer) != 0) throw Error("statx of an open file");
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
        return BitConverter.ToUInt64(buffer, 32);
    }

    /// <summary>
    /// lstat through statx(2): what staging needs to tell whether a file could have changed since it was hashed.
    /// ctime cannot be set from user space and moves on every write, chmod and link, so an equal ctime (with
    /// equal inode and size) means "not touched", as long as the comparison is not within one clock tick.
    /// </summary>
    public static FileStatus Stat(string path)
    {
        const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
        const uint StatxBasicStats = 0x7ff;
        var buffer = new byte[256];
        if (StatxNative(AtFdCwd, path, AtSymlinkNoFollow, StatxBasicStats, buffer) != 0) throw Error($"statx {path}");
        static long Nanoseconds(byte[] b, int offset) => BitConverter.ToInt64(b, offset) * 1_000_000_000L + BitConverter.ToUInt32(b, offset + 8);
        var mode = BitConverter.ToUInt16(buffer, 28);
        return new FileStatus(
            (UnixFileType)(mode & 0xF000),
            (UnixFileMode)(mode & 0xFFF),
            Inode: BitConverter.ToUInt64(buffer, 32),
            Size: (long)BitConverter.ToUInt64(buffer, 40),
            Links: BitConverter.ToUInt32(buffer, 16),
            MtimeNs: Nanoseconds(buffer, 112),
            CtimeNs: Nanoseconds(buffer, 96));
    }

    /// <summary><see cref="Stat"/>, or null when nothing is at the path.</summary>
    public static FileStatus? TryStat(string path)
    {
        try
        {
            return Stat(path);
        }
        catch (IOException e) when (e.HResult is 2 or 20) // ENOENT, ENOTDIR
        {
            return null;
        }
    }

    public static bool Close(int fd) => CloseNative(fd) == 0;

    [StructLayout(LayoutKind.Sequential)]
    private struct Rlimit
    {
        public ulong Soft;
        public ulong Hard;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRlimitNative(int resource, out Rlimit limit);

    /// <summary>
    /// The soft RLIMIT_NOFILE: one more than the highest descriptor number open(2), accept(2) or socket(2) may return.
    /// .NET raises it to the hard limit as the process starts (the PAL's INIT_IncreaseDescriptorLimit).
    /// </summary>
    public static long SoftFileLimit()
    {
        const int RlimitNofile = 7; // Linux
        return GetRlimitNative(RlimitNofile, out var limit) == 0 && limit.Soft < long.MaxValue ? (long)limit.Soft : long.MaxValue;
    }

    /// <summary>A second descriptor of the same open file (fcntl F_DUPFD_CLOEXEC: close-on-exec, so no child inherits it).</summary>
    public static int DuplicateCloseOnExec(int fd)
    {
        const int FDupFdCloexec = 1030;
        var duplicate = FcntlNative(fd, FDupFdCloexec, 0);
        if (duplicate < 0) throw Error("fcntl(F_DUPFD_CLOEXEC)");
        return duplicate;
    }

    /// <summary>
    /// open(2) for reading, as a handle FileStream and RandomAccess take. Unlike File.Open it takes no advisory
    /// flock, two syscalls per file that staging 20,000 files does not need.
    /// </summary>
    public static Microsoft.Win32.SafeHandles.SafeFileHandle OpenForRead(string path)
    {
        var fd = OpenNative(path, ORdonly | OCloexec);
        if (fd < 0) throw Error($"open {path}");
        return new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>open(2) with O_CREAT|O_EXCL for writing (mode 0600 until the caller sets the file's own), no flock.</summary>
    public static Microsoft.Win32.SafeHandles.SafeFileHandle CreateNew(string path)
    {
        const int OWronly = 1, OCreat = 0x40, OExcl = 0x80;
        var fd = OpenWithModeNative(path, OWronly | OCreat | OExcl | OCloexec, Convert.ToInt32("600", 8));
        if (fd < 0) throw Error($"open {path}");
        return new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
    }

    private static IOException Error(string what)
    {
        var errno = Marshal.GetLastPInvokeError();
        return new IOException($"{what}: {new Win32Exception(errno).Message}", errno);
    }
}

/// <summary>The fields of statx(2) that staging compares; times in nanoseconds since the epoch.</summary>
public readonly record struct FileStatus(UnixFileType Type, UnixFileMode Mode, ulong Inode, long Size, uint Links, long MtimeNs, long CtimeNs);

public enum UnixFileType
{
    Fifo = 0x1000,
    CharacterDevice = 0x2000,
    Directory = 0x4000,
    BlockDevice = 0x6000,
    Regular = 0x8000,
    Symlink = 0xA000,
    Socket = 0xC000,
}
