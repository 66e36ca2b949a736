namespace Cutover.Platform;

/// <summary>
/// How the agent learns an instance's exit code once the instance is no longer its child (after an agent upgrade,
/// only the process that reaps a process gets its status, and that is the old agent or init): the instance runs
/// under a small `sh` wrapper that writes the code to a file (temp + rename, so a reader never sees half of it)
/// before it exits itself. The watcher waits on the wrapper's pidfd (<see cref="ProcessWatch"/>), then reads the
/// file. For the agent upgrade (issue 12): every InstanceProcess runs under it.
///
/// The wrapper ignores SIGTERM/SIGINT/SIGHUP/SIGQUIT, so a stop signal sent to the instance's process group
/// reaches the app and not the wrapper; the app gets them back at their defaults (trap -, in the subshell, undoes
/// an ignore the shell set itself; an ignore inherited across exec could not be undone). SIGKILL to the group
/// kills the wrapper too: no file, and the agent, which sent the SIGKILL, knows why. No file without a SIGKILL
/// from us means the wrapper itself was killed (the OOM killer): exit status unknown.
/// Chosen over a reaper process of our own (PR_SET_CHILD_SUBREAPER): orphans go to the nearest subreaper
/// *ancestor*, and the new agent is a sibling of the instances, never their ancestor; and over keeping the old
/// agent alive as the instances' parent, which is the process being replaced.
/// </summary>
public static class ExitStatusFile
{
    private const string Wrapper =
        "trap '' TERM INT HUP QUIT; " +
        "(trap - TERM INT HUP QUIT; exec /bin/sh -c \"$1\"); " +
        "status=$?; " +
        "printf '%s\\n' \"$status\" > \"$2.tmp\" && mv -f \"$2.tmp\" \"$2\"; " +
        "exit $status";

    /// <summary>
    /// The argv (after the program `/bin/sh`) that runs <paramref name="command"/> as `sh -c` would and writes its
    /// exit code to <paramref name="statusPath"/>; the command and the path go in as arguments, so no quoting.
    /// </summary>
    public static IReadOnlyList<string> WrapperArguments(string command, string statusPath)
    {
        if (string.IsNullOrWhiteSpace(command)) throw new ArgumentException("the instance command is empty", nameof(command));
        if (!Path.IsPathFullyQualified(statusPath)) throw new ArgumentException($"the exit status file must be an absolute path, not '{statusPath}'", nameof(statusPath));
        return ["-c", Wrapper, "cutover-instance", command, statusPath];
    }

    /// <summary>The code the wrapper wrote (128 + n when the command died of signal n), or null when there is no file.</summary>
    public static int? TryRead(string statusPath)
    {
        string text;
        try
        {
            text = File.ReadAllText(statusPath);
        }
        catch (FileNotFoundException)
        {
            return null;
        }
        return int.TryParse(text.Trim(), out var code)
            ? code
            : throw new InvalidDataException($"{statusPath}: '{text.Trim()}' is not an exit code");
    }
}
