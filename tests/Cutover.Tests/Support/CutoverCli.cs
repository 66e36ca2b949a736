using System.Diagnostics;
using System.Text;

namespace Cutover.Tests.Support;

public sealed record CliResult(int ExitCode, string Stdout, string Stderr)
{
    public string All => Stdout + Stderr;
}

/// <summary>Runs the real `cutover` binary (built beside the tests) as a separate process.</summary>
public static class CutoverCli
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "cutover.dll");

    public static ProcessStartInfo StartInfo(string workingDir, params string[] args)
    {
        // Through `env --default-signal=INT`: a test run started with SIGINT ignored (a background job of a
        // non-interactive shell, nohup) would pass the ignore on, .NET honours an inherited ignore, and the tests that
        // interrupt a deploy with SIGINT would wait for an exit that never comes. env execs in place: same pid.
        var start = new ProcessStartInfo("env")
        {
            WorkingDirectory = workingDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("--default-signal=INT");
        start.ArgumentList.Add("dotnet");
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(Dll);
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["TERM"] = "dumb";
        start.Environment["DOTNET_TieredPGO"] = "0";
        return start;
    }

    public static Task<CliResult> RunAsync(string workingDir, params string[] args) => RunAsync(workingDir, new Dictionary<string, string>(), args);

    public static Task<CliResult> RunAsync(string workingDir, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = StartInfo(workingDir, args);
        foreach (var (key, value) in environment) start.Environment[key] = value;
        return RunAsync(start, args);
    }

    /// <summary>
    /// Runs cutover as another uid (and gid), through setpriv: the tests run as root, whom permissions do not stop.
    /// The user needs to reach <paramref name="workingDir"/>; HOME is /tmp, since nobody's home does not exist.
    /// </summary>
    /// <summary>
    /// The CLI's build copied where any user can read it: the checkout may lie under a directory only root can
    /// enter (a clone in a 0700 mktemp dir, /root), and then another uid could not even start it.
    /// </summary>
    private static readonly Lazy<string> DllForOtherUsers = new(() =>
    {
        var dir = Path.Combine(Path.GetTempPath(), $"cutover-cli-{Environment.ProcessId}");
        foreach (var source in Directory.EnumerateFiles(AppContext.BaseDirectory, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(dir, Path.GetRelativePath(AppContext.BaseDirectory, source));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(source, target, overwrite: true);
            File.SetUnixFileMode(target, (UnixFileMode)0b110_100_100);
        }
        foreach (var d in Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories).Append(dir))
            File.SetUnixFileMode(d, (UnixFileMode)0b111_101_101);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, recursive: true); } catch (IOException) { } };
        return Path.Combine(dir, "cutover.dll");
    });

    public static Task<CliResult> RunAsUserAsync(int uid, string workingDir, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = StartInfo(workingDir, args);
        start.ArgumentList[start.ArgumentList.IndexOf(Dll)] = DllForOtherUsers.Value;
        foreach (var (key, value) in environment) start.Environment[key] = value;
        start.Environment["HOME"] = "/tmp";
        string[] setpriv = [$"--reuid={uid}", $"--regid={uid}", "--clear-groups", start.FileName];
        for (var i = 0; i < setpriv.Length; i++) start.ArgumentList.Insert(i, setpriv[i]);
        start.FileName = "setpriv";
        return RunAsync(start, args);
    }

    /// <summary>Runs a published cutover (<paramref name="binary"/>, started directly) the way <see cref="RunAsync(string, string[])"/> runs the build beside the tests.</summary>
    public static Task<CliResult> RunPublishedAsync(string binary, string workingDir, IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        var start = new ProcessStartInfo(binary)
        {
            WorkingDirectory = workingDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in args) start.ArgumentList.Add(arg);
        start.Environment["TERM"] = "dumb";
        foreach (var (key, value) in environment) start.Environment[key] = value;
        return RunAsync(start, args);
    }

    private static async Task<CliResult> RunAsync(ProcessStartInfo start, string[] args)
    {
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"cutover {string.Join(' ', args)} did not finish in 2 minutes");
        }
        return new CliResult(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>Starts cutover and returns it with its stdout lines arriving on <paramref name="lines"/>.</summary>
    public static Process Start(string workingDir, Action<string> onLine, params string[] args) => Start(StartInfo(workingDir, args), onLine);

    /// <summary>Starts the process <paramref name="start"/> describes, its stdout and stderr lines arriving on <paramref name="onLine"/>.</summary>
    public static Process Start(ProcessStartInfo start, Action<string> onLine)
    {
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) onLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) onLine(e.Data); };
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }
}
