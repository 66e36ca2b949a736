using System.Diagnostics;
using System.Text.Json;
using Cutover.Platform;
using Cutover.Releases;

namespace Cutover.Locking;

/// <summary>Who holds a root's lock, written beside it so a waiting command can say whom it waits for.</summary>
public sealed record LockHolder(int Pid, string User, string Command, DateTimeOffset Since)
{
    public override string ToString() => $"pid {Pid}, user {User}, since {Since:yyyy-MM-dd HH:mm:ss}Z, running `{Command}`";
}

public sealed class LockHeldException(string root, LockHolder? holder, TimeSpan waited)
    : DeployException($"another deploy or rollback holds the lock on {root}" +
                      (holder is null ? "" : $" ({holder})") +
                      (waited > TimeSpan.Zero ? $"; waited {Config.Duration.Format(waited)}" : "") +
                      "; pass --lock-wait to wait for it")
{
    public LockHolder? Holder { get; } = holder;
}

/// <summary>
/// One deploy or rollback per root at a time, through flock(2) on <c>.cutover/deploy.lock</c>. The kernel
/// releases the lock when the holder exits, however it exits, so a killed deploy never leaves a stuck lock
/// and nobody ever deletes someone else's (Deployer PR #958).
/// </summary>
public sealed class DeployLock : IDisposable
{
    private static readonly TimeSpan MinimumWait = TimeSpan.FromMilliseconds(250);
    private readonly string _holderFile;
    private int _fd;

    private DeployLock(int fd, string holderFile)
    {
        _fd = fd;
        _holderFile = holderFile;
    }

    public static async Task<DeployLock> AcquireAsync(RootLayout layout, TimeSpan wait, string command, CancellationToken cancellationToken)
    {
        var fd = LibC.OpenLockFile(layout.LockFile);
        var clock = Stopwatch.StartNew();
        // `cutover status` probes the lock for an instant; a short grace keeps "fail at once" from losing to it.
        var patience = wait < MinimumWait ? MinimumWait : wait;
        try
        {
            while (!LibC.TryLockExclusive(fd))
            {
                if (clock.Elapsed >= patience)
                    throw new LockHeldException(layout.Root, ReadHolder(layout), clock.Elapsed);
                await Task.Delay(TimeSpan.FromMilliseconds(50), cancellationToken);
            }
        }
        catch
        {
            LibC.Close(fd);
            throw;
        }
        var holder = new LockHolder(Environment.ProcessId, Environment.UserName, command, DateTimeOffset.UtcNow);
        // Atomic for a reader, not durable: after a crash of the machine the flock is gone and so is what this says.
        AtomicFile.Replace(layout.LockHolder, Json.Write(holder, Json.Options));
        return new DeployLock(fd, layout.LockHolder);
    }

    /// <summary>The holder named in the lock's side file, when the lock is actually held.</summary>
    public static LockHolder? CurrentHolder(RootLayout layout)
    {
        if (!File.Exists(layout.LockFile)) return null;
        int fd;
        try
        {
            fd = LibC.OpenLockFileReadOnly(layout.LockFile);
        }
        catch (IOException e)
        {
            throw new DeployException($"cannot tell whether {layout.Root} is locked: {e.Message}; run this as the user who deploys, or let this user read the lock file");
        }
        try
        {
            if (LibC.TryLockExclusive(fd)) return null; // free; closing the fd below releases it again
            return ReadHolder(layout);
        }
        finally
        {
            LibC.Close(fd);
        }
    }

    private static LockHolder? ReadHolder(RootLayout layout)
    {
        try
        {
            return Json.Read<LockHolder>(File.ReadAllText(layout.LockHolder), Json.Options);
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return null;
        }
    }

    public void Dispose()
    {
        if (_fd < 0) return;
        File.Delete(_holderFile);
        LibC.Close(_fd);
        _fd = -1;
    }
}
