using System.Diagnostics;

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
    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string>
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
/// A hook that overruns its timeout is killed with its whole process tree.
/// </summary>
public sealed class HookRunner
{
    public async Task RunAsync(string stage, IReadOnlyList<string> commands, HookContext context,
        Action<string, string> onOutput, CancellationToken cancellationToken)
    {
        foreach (var command in commands)
            await RunOneAsync(stage, command, context, onOutput, cancellationToken);
    }

    private static async Task RunOneAsync(string stage, string command, HookContext context,
        Action<string, string> onOutput, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("/bin/sh")
        {
            WorkingDirectory = context.ReleaseDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(command);
        foreach (var (key, value) in context.Environment) start.Environment[key] = value;

        onOutput(stage, $"$ {command}");
        using var process = new Process { StartInfo = start };
        var gate = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (gate) onOutput(stage, e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (gate) onOutput(stage, e.Data); };
        try
        {
            process.Start();
        }
        catch (Exception e)
        {
            throw new HookFailedException(stage, command, $"could not start: {e.Message}");
        }
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(context.Timeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            cancellationToken.ThrowIfCancellationRequested();
            throw new HookFailedException(stage, command, $"timed out after {Config.Duration.Format(context.Timeout)} and was killed");
        }
        process.WaitForExit(); // drains the output readers
        if (process.ExitCode != 0)
            throw new HookFailedException(stage, command, $"exited with code {process.ExitCode}");
    }
}
