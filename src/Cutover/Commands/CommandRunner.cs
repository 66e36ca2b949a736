using Cutover.Config;
using Cutover.Locking;
using Cutover.Staging;

namespace Cutover.Cli.Commands;

/// <summary>Exit codes, and the one place errors turn into messages.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    public const int Failed = 1;
    public const int BadInput = 2;
    public const int Locked = 3;
    public const int Cancelled = 130;
}

/// <summary>
/// The secrets a command came to know (a deploy's env_file and ${VAR} values, the root's env files), set by the
/// command once it has loaded its config, so an error message that quotes one is shown with `***` instead.
/// </summary>
public sealed class SecretsToHide
{
    public Redactor Redactor { get; set; } = Redactor.None;
}

public static class CommandRunner
{
    public static async Task<int> RunAsync(CliEnvironment env, bool json, Func<Task<int>> action, SecretsToHide? secrets = null)
    {
        // Every message below is reported through this one, which hides the secrets the command came to know.
        int Report(CliEnvironment env, bool json, string kind, string[] messages, int code) =>
            CommandRunner.Report(env, json, kind, messages.Select(m => secrets?.Redactor.Redact(m) ?? m).ToArray(), code);

        try
        {
            return await action();
        }
        catch (ConfigException e)
        {
            return Report(env, json, "config", e.Errors.Select(x => x.ToString()).ToArray(), ExitCodes.BadInput);
        }
        catch (UsageException e)
        {
            return Report(env, json, "usage", [e.Message], ExitCodes.BadInput);
        }
        catch (ArtifactException e)
        {
            return Report(env, json, "artifact", [e.Message], ExitCodes.BadInput);
        }
        catch (InputException e)
        {
            return Report(env, json, "input", [e.Message], ExitCodes.BadInput);
        }
        catch (LockHeldException e)
        {
            return Report(env, json, "locked", [e.Message], ExitCodes.Locked);
        }
        catch (DeployException e)
        {
            return Report(env, json, "failed", [e.Message], ExitCodes.Failed);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The environment failed under us (permissions, a full disk, a file system gone read-only): one line
            // that names the path, not a stack trace.
            return Report(env, json, "failed", [e.Message], ExitCodes.Failed);
        }
        catch (OperationCanceledException)
        {
            return Report(env, json, "cancelled", ["cancelled"], ExitCodes.Cancelled);
        }
    }

    private static int Report(CliEnvironment env, bool json, string kind, string[] messages, int code)
    {
        if (json)
        {
            new Cutover.Progress.JsonProgress(env.Out).Failed(kind, messages);
        }
        else
        {
            foreach (var message in messages) env.Error.WriteLine($"error: {message}");
        }
        return code;
    }
}
