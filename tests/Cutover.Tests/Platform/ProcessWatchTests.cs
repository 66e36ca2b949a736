using System.Diagnostics;
using Cutover.Platform;
using Cutover.Tests.Support;

namespace Cutover.Tests.Platform;

/// <summary>
/// Processes that are not children of the test (started in the background by a shell that exits at once, so init
/// or a subreaper adopts them): what an agent sees of the instances after an upgrade.
/// </summary>
public class ProcessWatchTests
{
    [Fact]
    public async Task A_non_child_is_signalled_through_its_pidfd_and_its_exit_is_seen_but_its_status_is_not()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var pid = StartNonChild("/bin/sleep", "30.731");
        using var watch = ProcessWatch.TryOpen(pid);
        Assert.NotNull(watch);
        Assert.False(watch.HasExited);
        var exited = watch.WaitForExitAsync(timeout.Token);
        await Task.Delay(200, timeout.Token);
        Assert.False(exited.IsCompleted);

        Assert.True(watch.Signal(15));
        await exited;
        Assert.True(watch.HasExited);
        Assert.Null(watch.TryReadExitCode()); // ECHILD: only the parent that reaps it gets the status
        await Wait.UntilAsync(() => !Directory.Exists($"/proc/{pid}"), TimeSpan.FromSeconds(10), "init to reap it");
        Assert.False(watch.Signal(15)); // gone: the pidfd never reaches whatever gets the pid next
    }

    [Fact]
    public async Task Waiting_is_cancellable()
    {
        var pid = StartNonChild("/bin/sleep", "30.732");
        using var watch = ProcessWatch.TryOpen(pid)!;
        try
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => watch.WaitForExitAsync(cancel.Token));
            Assert.False(watch.HasExited);
        }
        finally
        {
            watch.Signal(9);
        }
    }

    [Fact]
    public void No_process_no_watch()
    {
        var pid = StartNonChild("/bin/true");
        Wait.Until(() => !Directory.Exists($"/proc/{pid}"), TimeSpan.FromSeconds(10), "/bin/true to be reaped");
        Assert.Null(ProcessWatch.TryOpen(pid));
        Assert.Throws<ArgumentOutOfRangeException>(() => ProcessWatch.TryOpen(0));
    }

    [Fact]
    public async Task The_wrapper_gives_the_exit_code_of_a_non_child_that_exits_by_itself()
    {
        using var dir = new TempDir();
        var status = dir.Combine("exit-status");
        var code = await RunWrappedAsync("echo out; exit 3", status, stopWith: null);
        Assert.Equal(3, code);
    }

    [Fact]
    public async Task A_stop_signal_to_the_instances_group_reaches_the_command_and_the_wrapper_records_how_it_ended()
    {
        using var dir = new TempDir();
        // The command's own TERM handler decides the code (a graceful shutdown); then a command that dies of it.
        Assert.Equal(0, await RunWrappedAsync("trap 'exit 0' TERM; sleep 30.733 & wait", dir.Combine("graceful"), stopWith: 15));
        Assert.Equal(143, await RunWrappedAsync("exec sleep 30.734", dir.Combine("killed"), stopWith: 15));
    }

    [Fact]
    public async Task A_group_sigkill_leaves_no_status_file()
    {
        using var dir = new TempDir();
        Assert.Null(await RunWrappedAsync("exec sleep 30.735", dir.Combine("none"), stopWith: 9));
    }

    [Fact]
    public void The_wrapper_refuses_what_it_cannot_run()
    {
        Assert.Throws<ArgumentException>(() => ExitStatusFile.WrapperArguments(" ", "/tmp/x"));
        Assert.Throws<ArgumentException>(() => ExitStatusFile.WrapperArguments("true", "relative/x"));
    }

    /// <summary>
    /// The wrapped command in a session of its own (as InstanceProcess starts instances), not our child; optionally
    /// signalled as a group once it runs; the code its wrapper wrote.
    /// </summary>
    private static async Task<int?> RunWrappedAsync(string command, string statusPath, int? stopWith)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var pid = StartNonChild(["setsid", "/bin/sh", .. ExitStatusFile.WrapperArguments(command, statusPath)]);
        using var watch = ProcessWatch.TryOpen(pid);
        try
        {
            if (stopWith is { } signal)
            {
                // Signal once the command runs under the wrapper (the trap is set before the subshell starts).
                await Wait.UntilAsync(() => File.ReadAllText($"/proc/{pid}/task/{pid}/children").Trim().Length > 0,
                    TimeSpan.FromSeconds(10), "the command to start");
                await Task.Delay(100, timeout.Token); // the command's own trap, in the test that sets one
                Assert.True(LibC.Kill(-pid, signal));
            }
            if (watch is not null) await watch.WaitForExitAsync(timeout.Token);
            Assert.Null(watch?.TryReadExitCode());
            Assert.False(File.Exists(statusPath + ".tmp"));
            return ExitStatusFile.TryRead(statusPath);
        }
        finally
        {
            LibC.Kill(-pid, 9);
        }
    }

    private static int StartNonChild(params string[] argv)
    {
        var shell = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true };
        shell.ArgumentList.Add("-c");
        // Background, output away from our pipe, then the pid: the shell exits and the process is reparented.
        shell.ArgumentList.Add("\"$@\" </dev/null >/dev/null 2>&1 & echo $!");
        shell.ArgumentList.Add("start-non-child");
        foreach (var arg in argv) shell.ArgumentList.Add(arg);
        using var process = Process.Start(shell)!;
        var pid = int.Parse(process.StandardOutput.ReadLine()!);
        process.WaitForExit();
        return pid;
    }
}
