using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Cutover.Platform;

internal static partial class LibC
{
    [LibraryImport("libc", EntryPoint = "execve", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int ExecveNative(string path, string?[] argv, string?[] envp);

    [LibraryImport("libc", EntryPoint = "sigprocmask", SetLastError = true)]
    private static partial int SigprocmaskNative(int how, byte[] set, IntPtr oldSet);

    [LibraryImport("libc", EntryPoint = "signal", SetLastError = true)]
    private static partial IntPtr SignalNative(int signal, IntPtr handler);

    internal static void Execve(string path, IReadOnlyList<string> argv, IReadOnlyList<string> envp)
    {
        ExecveNative(path, [.. argv, null], [.. envp, null]);
        throw new Win32Exception(Marshal.GetLastPInvokeError(), $"execve {path}");
    }

    /// <summary>
    /// What a new program should start with and execve keeps from us: no blocked signals, and SIGPIPE at its
    /// default (the .NET runtime ignores it, and an ignored signal stays ignored across execve).
    /// </summary>
    internal static void ResetSignalsForExec()
    {
        const int SigSetMask = 2;
        const int SigPipe = 13;
        SigprocmaskNative(SigSetMask, new byte[128], IntPtr.Zero);
        SignalNative(SigPipe, IntPtr.Zero); // SIG_DFL
    }
}

/// <summary>
/// Replaces this process with another program (execve(2)), as `exec` in a shell: the program gets this process's
/// pid, terminal, stdin/stdout/stderr and signals, and its exit status is the one the caller sees. For `cutover exec`,
/// where a console must own the terminal (Ctrl-C is the console's) and nothing of Cutover should stay in between.
/// </summary>
public static class ProcessImage
{
    /// <summary>Never returns; a program that cannot be started throws.</summary>
    /// <param name="workingDirectory">The directory it starts in.</param>
    /// <param name="environment">Its whole environment.</param>
    public static void Replace(string path, IReadOnlyList<string> argv, IReadOnlyDictionary<string, string> environment, string workingDirectory)
    {
        Directory.SetCurrentDirectory(workingDirectory);
        LibC.ResetSignalsForExec();
        LibC.Execve(path, argv, environment.Select(e => $"{e.Key}={e.Value}").ToList());
    }
}
