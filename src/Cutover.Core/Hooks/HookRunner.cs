using System.Diagnostics;
using Cutover.Platform;

namespace Cutover.Hooks;

/// <summary>Where a hook runs and what it is told about the release.</summary>
public sealed record HookContext(
    string App,
    string Root,
    string ReleaseId,
    string ReleaseDir,
    string? PreviousReleaseDir,
    TimeSpan Timeout)
{
    /// <summary>The app's environment (top-level env and env_file) of the release the hook serves; CUTOVER_* win over it.</summary>
    public IReadOnlyDictionary<string, string> AppVariables { get; init; } = new Dictionary<string, string>();

    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>(AppVariables)
    {
        ["CUTOVER_APP"] = App,
        ["CUTOVER_ROOT"] = Root,
        ["CUTOVER_RELEASE_ID"] = ReleaseId,
        ["CUTOVER_RELEASE_DIR"] = ReleaseDir,
        ["CUTOVER_PREVIOUS_RELEASE_DIR"] = PreviousReleaseDir ?? "",
    };
}

public sealed class HookFailedException(string stage, string command, string reason)
    : DeployException($"{stage} hook failed: `{command}` {reason}")
{
    public string Stage { get; } = stage;
    public string Command { get; } = command;
}

/// <summary>
/// Runs hook commands through /bin/sh -c, one after another, streaming every output line as it comes.
/// Each hook runs in a process group of its own (setsid) and never outlives its step: when its shell exits, times
/// out or is cancelled, whatever it left in its group is killed, and the deploy stops waiting for output that a
/// background process still holds open. A watchdog in the group kills the group when the deploy's end of the
/// stdin pipe closes, which is also what happens when the deploy itself is SIGKILLed.
/// </summary>
public sealed class HookRunner
{
    private const int SigKill = 9;

    // $1 is the hook. fd 3 is the deploy's pipe: a builtin `read` (no child process) returns at its EOF and kills
    // the group. The hook itself gets /dev/null as stdin and never sees fd 3.
    private const string Wrapper = """
        exec 3<&0 0</dev/null
        { read -r _ <&3; kill -KILL 0; } >/dev/null 2>&1 &
        watchdog=$!
        exec 3<&-
        /bin/sh -c "$1"
        status=$?
        kill -KILL "$watchdog" 2>/dev/null
        exit $status
        """;

    /// <summary>How long output may still arrive after the hook's shell exited and its group was killed.</summary>
    private static readonly TimeSpan OutputGrace = TimeSpan.FromSeconds(2);

    public async Task RunAsync(string stage, IReadOnlyList<string> commands, HookContext context,
        Action<string, string> onOutput, CancellationToken cancellationToken)
    {
        foreach (var command in commands)
            await RunOneAsync(stage, command, context, onOutput, cancellationToken);
    }

    private static async Task RunOneAsync(string stage, string command, HookContext context,
        Action<string, string> onOutput, CancellationToken cancellationToken)
    {
        // setsid execs in place (the child of Process.Start is never a group leader), so the pid is the group's id.
        var start = new ProcessStartInfo("setsid")
        {
            WorkingDirectory = context.ReleaseDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "/bin/sh", "-c", Wrapper, "cutover-hook", command }) start.ArgumentList.Add(arg);
        foreach (var (key, value) in context.Environment) start.Environment[key] = value;

        onOutput(stage, $"$ {command}");
        using var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var gate = new object();
        var outputClosed = new TaskCompletionSource[] { new(TaskCreationOptions.RunContinuationsAsynchronously), new(TaskCreationOptions.RunContinuationsAsynchronously) };
        process.OutputDataReceived += (_, e) => { if (e.Data is null) outputClosed[0].TrySetResult(); else lock (gate) onOutput(stage, e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is null) outputClosed[1].TrySetResult(); else lock (gate) onOutput(stage, e.Data); };
        // Exited, not WaitForExitAsync: the latter also waits for EOF on the output, which a background process holds.
        var exited = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        process.Exited += (_, _) => exited.TrySetResult();
        try
        {
            process.Start();
        }
        catch (Exception e)
        {
            throw new HookFailedException(stage, command, $"could not start: {e.Message}");
        }
        var group = process.Id;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(context.Timeout);
            try
            {
                await exited.Task.WaitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                KillGroup(group);
                await exited.Task.WaitAsync(OutputGrace, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
                cancellationToken.ThrowIfCancellationRequested();
                throw new HookFailedException(stage, command, $"timed out after {Config.Duration.Format(context.Timeout)} and was killed with its process group");
            }
        }
        finally
        {
            // Whatever the hook left running in its group goes with it; output held open elsewhere is not waited for.
            KillGroup(group);
            process.StandardInput.Close();
            await Task.WhenAll(outputClosed.Select(c => c.Task)).WaitAsync(OutputGrace, CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        if (process.ExitCode != 0)
            throw new HookFailedException(stage, command, $"exited with code {process.ExitCode}");
    }

    private static void KillGroup(int group)
    {
        try
        {
            LibC.Kill(-group, SigKill);
        }
        catch (IOException)
        {
            // The group is gone already (ESRCH is "false", other errors are not ours to handle here).
        }
    }
}
