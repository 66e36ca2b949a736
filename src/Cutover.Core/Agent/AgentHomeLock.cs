using System.Globalization;
using System.Text;
using Cutover.Platform;
using Microsoft.Win32.SafeHandles;

namespace Cutover.Agent;

/// <summary>
/// One agent per CUTOVER_HOME: flock(2) on agent.lock, taken before the agent touches anything else there. The
/// kernel drops it when the holder dies, however it dies, so a killed agent never blocks the next one; the
/// holder's pid is written into the lock file itself, so a refused agent can name it even before agent.pid exists.
/// </summary>
public sealed class AgentHomeLock : IDisposable
{
    private int _fd;

    private AgentHomeLock(int fd) => _fd = fd;

    /// <exception cref="DeployException">another agent holds the home; nothing was changed.</exception>
    public static AgentHomeLock Acquire(AgentHome home)
    {
        Directory.CreateDirectory(home.Path);
        var fd = LibC.OpenLockFile(home.Lock);
        try
        {
            if (!LibC.TryLockExclusive(fd))
            {
                var holder = ReadHolder(fd);
                throw new DeployException($"another agent{(holder is { } pid ? $" (pid {pid})" : "")} already runs on {home.Path}; " +
                                          "one agent serves every app of a CUTOVER_HOME (stop it with SIGTERM first, or use another CUTOVER_HOME)");
            }
            using var handle = new SafeFileHandle(fd, ownsHandle: false);
            var ownPid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
            RandomAccess.SetLength(handle, 0);
            RandomAccess.Write(handle, ownPid, 0);
            return new AgentHomeLock(fd);
        }
        catch
        {
            LibC.Close(fd);
            throw;
        }
    }

    /// <summary>
    /// The lock the old agent handed over in an upgrade (its descriptor, received by SCM_RIGHTS): flock belongs to the
    /// open file description, so holding this copy is holding the lock, whatever happens to the old agent.
    /// </summary>
    public static AgentHomeLock FromHandedDescriptor(int fd) => new(fd);

    /// <summary>The descriptor, for the upgrade to send to the new agent (a duplicate goes; this one stays ours).</summary>
    public int Descriptor => _fd;

    /// <summary>The new agent, once it owns the home: its pid in the lock file, for the next refused agent to name.</summary>
    public void WriteHolder()
    {
        using var handle = new SafeFileHandle(_fd, ownsHandle: false);
        var ownPid = Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + "\n");
        RandomAccess.SetLength(handle, 0);
        RandomAccess.Write(handle, ownPid, 0);
    }

    private static int? ReadHolder(int fd)
    {
        using var handle = new SafeFileHandle(fd, ownsHandle: false);
        var buffer = new byte[32];
        var read = RandomAccess.Read(handle, buffer, 0);
        return int.TryParse(Encoding.ASCII.GetString(buffer, 0, read).Trim(), CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }

    public void Dispose()
    {
        // Closing the descriptor releases the flock; the file stays (deleting it would race a starting agent).
        if (_fd >= 0) LibC.Close(_fd);
        _fd = -1;
    }
}
