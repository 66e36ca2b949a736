using System.Diagnostics;
using Cutover.Platform;

namespace Cutover.Supervisor;

/// <summary>
/// One running instance: `/bin/sh -c command` in its release dir, in a session of its own (setsid), so a stop
/// can signal, and finally SIGKILL, the whole process group and not leave grandchildren behind.
/// </summary>
public sealed class InstanceProcess : IRunningInstance
{
    private const int SigKill = 9;
    /// <summary>The variable naming the agent home an instance belongs to (see <see cref="InstanceSpec.AgentHome"/>).</summary>
    public const string AgentHomeVariable = "CUTOVER_AGENT_HOME";
    private readonly Process _process;
    private readonly NodeIpcChannel? _ipc;
    private readonly NotifySocket? _notify;

    private InstanceProcess(Process process, NodeIpcChannel? ipc, NotifySocket? notify, int port)
    {
        Endpoint = new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port);
        _process = process;
        _ipc = ipc;
        _notify = notify;
        Pid = process.Id;
        Exited = process.WaitForExitAsync();
    }

    public int Pid { get; }
    public string Description => $"pid {Pid}";
    public System.Net.IPEndPoint Endpoint { get; }
    public Task? ReadySignal => _notify?.Ready ?? _ipc?.Ready;
    public bool SaysStopping => _notify?.Stopping == true;
    public Task<string?> HealthProblemAsync(CancellationToken cancellationToken) => Task.FromResult<string?>(null);
    public DateTimeOffset Started { get; } = DateTimeOffset.UtcNow;
    public Task Exited { get; }
    public bool HasExited => Exited.IsCompleted;
    public int? ExitCode => HasExited ? _exitCode ??= _process.ExitCode : null;
    private int? _exitCode;
    public NodeIpcChannel? Ipc => _ipc;

    /// <summary>The last non-empty line the instance wrote to stderr: the reason, when it dies at start.</summary>
    public string? LastErrorLine => Volatile.Read(ref _lastErrorLine);
    private string? _lastErrorLine;

    /// <summary>"exited with code N", with the last stderr line when there is one.</summary>
    public string ExitDescription(string? when = null) =>
        $"exited with code {ExitCode}{(when is null ? "" : " " + when)}{(LastErrorLine is { } line ? $" (stderr: {Truncate(line)})" : "")}";

    private static string Truncate(string line) => line.Length <= 200 ? line.Trim() : line[..200].Trim() + "…";
    public NotifySocket? Notify => _notify;

    /// <summary>Starts the instance; <paramref name="onOutput"/> gets each line of stdout ("out") and stderr ("err").</summary>
    public static InstanceProcess Start(InstanceSpec spec, object spawnGate, Action<string, string> onOutput)
    {
        var start = new ProcessStartInfo("setsid")
        {
            WorkingDirectory = spec.ReleaseDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var arg in new[] { "/bin/sh", "-c", ShellCommand(spec.Run.Command) }) start.ArgumentList.Add(arg);
        foreach (var (key, value) in spec.Run.Env) start.Environment[key] = value;
        start.Environment[spec.Run.PortEnv] = spec.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["CUTOVER_APP"] = spec.App;
        start.Environment["CUTOVER_INSTANCE"] = spec.Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["CUTOVER_RELEASE_ID"] = spec.ReleaseId;
        start.Environment["NODE_APP_INSTANCE"] = spec.Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (spec.AgentHome is not null) start.Environment[AgentHomeVariable] = spec.AgentHome;

        NotifySocket? notify = null;
        NodeIpcChannel? ipc = null;
        Process process;
        // One spawn at a time: an inheritable IPC fd must reach this child and no other.
        lock (spawnGate)
        {
            if (spec.Run.Ready == Config.ReadinessKind.Notify)
            {
                // One socket per process: an old instance saying STOPPING=1 must never reach its replacement.
                notify = NotifySocket.Create(Path.Combine(spec.RuntimeDir, $"{spec.Id}-{spec.Port}.notify"));
                start.Environment["NOTIFY_SOCKET"] = notify.Path;
            }
            (int Ours, int Theirs)? pair = null;
            if (spec.Run.Ready == Config.ReadinessKind.Message)
            {
                pair = LibC.InheritableSocketPair();
                start.Environment["NODE_CHANNEL_FD"] = pair.Value.Theirs.ToString(System.Globalization.CultureInfo.InvariantCulture);
                start.Environment["NODE_CHANNEL_SERIALIZATION_MODE"] = "json";
            }
            try
            {
                process = Process.Start(start) ?? throw new InvalidOperationException("setsid did not start");
            }
            catch (Exception e) when (e is System.ComponentModel.Win32Exception or InvalidOperationException)
            {
                if (pair is { } p) { LibC.Close(p.Ours); LibC.Close(p.Theirs); }
                notify?.Dispose();
                throw new DeployException($"could not start `{spec.Run.Command}` in {spec.ReleaseDir}: {e.Message}");
            }
            if (pair is { } opened)
            {
                LibC.Close(opened.Theirs);
                ipc = new NodeIpcChannel(opened.Ours);
            }
        }
        process.StandardInput.Close();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) onOutput("out", e.Data); };
        var instance = new InstanceProcess(process, ipc, notify, spec.Port);
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            if (!string.IsNullOrWhiteSpace(e.Data)) Volatile.Write(ref instance._lastErrorLine, e.Data);
            onOutput("err", e.Data);
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return instance;
    }

    /// <summary>
    /// A simple command (no shell syntax) is exec'd by the shell, so the app itself is the instance's pid;
    /// anything else runs under sh, and the process group still holds it all together.
    /// </summary>
    internal static string ShellCommand(string command) =>
        command.IndexOfAny([';', '&', '|', '<', '>', '(', ')', '$', '`', '\n', '*', '?', '{', '}']) < 0 && !command.TrimStart().StartsWith("exec ", StringComparison.Ordinal)
            ? "exec " + command
            : command;

    /// <summary>
    /// stop_signal to the whole group; then wait until the group is empty (not just its leader: a shell may die
    /// at once while the app still finishes its requests), and SIGKILL the group after kill_timeout.
    /// </summary>
    public async Task StopAsync(int signal, TimeSpan killTimeout)
    {
        if (!GroupAlive()) return;
        LibC.Kill(-Pid, signal);
        var clock = Stopwatch.StartNew();
        while (GroupAlive() && clock.Elapsed < killTimeout)
            await Task.Delay(TimeSpan.FromMilliseconds(10));
        if (GroupAlive()) LibC.Kill(-Pid, SigKill);
        await Exited;
    }

    private bool GroupAlive()
    {
        if (!HasExited) return true;
        return LibC.Kill(-Pid, 0);
    }

    /// <summary>Resident memory of every process in the instance's group, in bytes.</summary>
    public long RssBytes() =>
        ProcStat.AllPids().Select(ProcStat.Read).Where(p => p?.ProcessGroup == Pid).Sum(p => p!.Value.RssBytes);

    public async ValueTask DisposeAsync()
    {
        if (!HasExited) await StopAsync(SigKill, TimeSpan.Zero);
        _ = ExitCode; // keep it readable after the Process object is gone
        _ipc?.Dispose();
        _notify?.Dispose();
        _process.Dispose();
    }
}
