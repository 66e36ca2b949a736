using System.Diagnostics;
using System.IO.Pipes;
using Microsoft.Win32.SafeHandles;
using Cutover.Platform;

namespace Cutover.Supervisor;

/// <summary>
/// What a new owner needs to take a running instance over (issue 12: the agent upgrade), serializable; its stdout and
/// stderr pipes travel beside it as descriptors (FdPassing). The pid with its start time names the process for good.
/// </summary>
public sealed record InstanceProcessDescription(int Pid, int ProcessGroup, long StartTicks, DateTimeOffset Started, string Endpoint, string ExitStatusFile);

/// <summary>An instance let go by its owner: the description and the pipes (read ends, still the old owner's to close).</summary>
public sealed record InstanceHandover(InstanceProcessDescription Description, SafePipeHandle Stdout, SafePipeHandle Stderr);

/// <summary>
/// One running instance: `/bin/sh -c command` in its release dir, in a session of its own (setsid), so a stop
/// can signal, and finally SIGKILL, the whole process group and not leave grandchildren behind.
/// The command runs under <see cref="ExitStatusFile"/>'s wrapper (the group leader, whose pid this is), which
/// writes the exit code to a file: an owner that is not the parent (<see cref="Adopt"/>, after a handover) learns
/// the exit from a pidfd and the code from that file. The wrapper ignores SIGTERM, so signals go to the group.
/// </summary>
public sealed class InstanceProcess : IRunningInstance
{
    private const int SigKill = 9;
    /// <summary>How long the exit waits for the output an exiting instance has still to deliver.</summary>
    private static readonly TimeSpan OutputAfterExit = TimeSpan.FromSeconds(1);
    /// <summary>The variable naming the agent home an instance belongs to (see <see cref="InstanceSpec.AgentHome"/>).</summary>
    public const string AgentHomeVariable = "CUTOVER_AGENT_HOME";
    /// <summary>The child, when this process started it; null for an adopted instance (watched through <see cref="_watch"/>).</summary>
    private readonly Process? _process;
    /// <summary>An adopted instance's leader by pidfd; null when it had already exited when it was adopted.</summary>
    private readonly ProcessWatch? _watch;
    private readonly CancellationTokenSource _watching = new();
    private readonly OutputPump _stdout;
    private readonly OutputPump _stderr;
    private readonly NodeIpcChannel? _ipc;
    private readonly NotifySocket? _notify;
    private readonly long _startTicks;
    private readonly string _exitStatusPath;
    private readonly Action<string, string> _onOutput;
    /// <summary>Handed to another owner: this one neither reads, watches nor stops it any more.</summary>
    private bool _handedOver;
    private bool _disposed;
    /// <summary>We sent SIGKILL: the wrapper died with the app and wrote no file, and that is why.</summary>
    private bool _killed;

    private InstanceProcess(int pid, long startTicks, DateTimeOffset started, System.Net.IPEndPoint endpoint, string exitStatusPath,
        Process? process, ProcessWatch? watch, PipeStream stdout, PipeStream stderr, Action<string, string> onOutput,
        NodeIpcChannel? ipc, NotifySocket? notify)
    {
        Pid = pid;
        _startTicks = startTicks;
        Started = started;
        Endpoint = endpoint;
        _exitStatusPath = exitStatusPath;
        _process = process;
        _watch = watch;
        _ipc = ipc;
        _notify = notify;
        _onOutput = onOutput;
        _stdout = new OutputPump(stdout, line => onOutput("out", line));
        _stderr = new OutputPump(stderr, line =>
        {
            if (!string.IsNullOrWhiteSpace(line)) Volatile.Write(ref _lastErrorLine, line);
            onOutput("err", line);
        });
        Exited = WatchExitAsync();
    }

    public int Pid { get; }
    public string Description => $"pid {Pid}";
    public System.Net.IPEndPoint Endpoint { get; }
    public Task? ReadySignal => _notify?.Ready ?? _ipc?.Ready;
    public bool SaysStopping => _notify?.Stopping == true;
    public Task<string?> HealthProblemAsync(CancellationToken cancellationToken) => Task.FromResult<string?>(null);
    public DateTimeOffset Started { get; }
    public Task Exited { get; }
    public bool HasExited => Exited.IsCompleted;
    /// <summary>The exit code; null while it runs, and for an adopted instance whose wrapper was killed by someone else.</summary>
    public int? ExitCode => HasExited ? _exitCode : null;
    private int? _exitCode;
    public NodeIpcChannel? Ipc => _ipc;

    /// <summary>The last non-empty line the instance wrote to stderr: the reason, when it dies at start.</summary>
    public string? LastErrorLine => Volatile.Read(ref _lastErrorLine);
    private string? _lastErrorLine;

    /// <summary>"exited with code N", with the last stderr line when there is one.</summary>
    public string ExitDescription(string? when = null) =>
        $"exited with code {ExitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"}{(when is null ? "" : " " + when)}{(LastErrorLine is { } line ? $" (stderr: {Truncate(line)})" : "")}";

    private static string Truncate(string line) => line.Length <= 200 ? line.Trim() : line[..200].Trim() + "…";
    public NotifySocket? Notify => _notify;

    private async Task WatchExitAsync()
    {
        if (_process is not null)
        {
            try
            {
                await _process.WaitForExitAsync(_watching.Token);
            }
            catch (OperationCanceledException) when (_handedOver)
            {
                return; // another owner's now; this one never completes its exit
            }
            _exitCode = _process.ExitCode;
        }
        else
        {
            if (_watch is not null) await _watch.WaitForExitAsync(_watching.Token);
            _exitCode = ExitStatusFile.TryRead(_exitStatusPath) ?? (_killed ? 128 + SigKill : null);
        }
        // As Process.WaitForExit with redirected output: exited once the output is read to its end too, so the last
        // stderr line (the reason it exited) is there when the exit is reported. Bounded, unlike Process: when only
        // the leader (the wrapper) was killed, the app still holds the pipes until the stop that follows kills the group.
        await Task.WhenAny(Task.WhenAll(_stdout.Completed, _stderr.Completed), Task.Delay(OutputAfterExit));
    }

    /// <summary>Starts the instance; <paramref name="onOutput"/> gets each line of stdout ("out") and stderr ("err").</summary>
    public static InstanceProcess Start(InstanceSpec spec, object spawnGate, Action<string, string> onOutput)
    {
        Directory.CreateDirectory(spec.RuntimeDir);
        var exitStatusPath = Path.Combine(spec.RuntimeDir, $"{spec.RuntimeFileStem}.exit");
        File.Delete(exitStatusPath); // a predecessor's on this port: its code is not this one's
        var start = new ProcessStartInfo("setsid")
        {
            WorkingDirectory = spec.ReleaseDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("/bin/sh");
        foreach (var arg in ExitStatusFile.WrapperArguments(ShellCommand(spec.Run.Command), exitStatusPath)) start.ArgumentList.Add(arg);
        // run.env is the app's whole environment here: the agent folded the release's env file under it
        // (ReleaseEnvironmentFile.Apply), so instances and `cutover exec` see the same variables.
        // The agent's socket settings are its own (a .NET app with inline completions would run its code on epoll threads).
        foreach (var variable in Platform.InlineSocketCompletions.Variables) start.Environment.Remove(variable);
        foreach (var (key, value) in spec.Run.Env) start.Environment[key] = value;
        // A process type listens nowhere: no port variable (and none inherited from the agent's environment).
        if (spec.ServesHttp) start.Environment[spec.Run.PortEnv] = spec.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
        else start.Environment.Remove(spec.Run.PortEnv);
        start.Environment["CUTOVER_PROCESS"] = spec.Process;
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
                notify = NotifySocket.Create(Path.Combine(spec.RuntimeDir, $"{spec.RuntimeFileStem}.notify"));
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
        var started = DateTimeOffset.UtcNow;
        // Read now, while it is certainly our unreaped child: with the pid it names this process for a later owner.
        var startTicks = ProcStat.Read(process.Id)?.StartTicks ?? 0;
        return new InstanceProcess(process.Id, startTicks, started, new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, spec.Port), exitStatusPath,
            process, watch: null, (PipeStream)process.StandardOutput.BaseStream, (PipeStream)process.StandardError.BaseStream, onOutput, ipc, notify);
    }

    /// <summary>
    /// Takes over an instance another owner handed over (<see cref="HandOverAsync"/>): exit by pidfd, code from the
    /// wrapper's file, output from the pipes received (owned from here). An instance already gone (or its pid now
    /// another process's) is adopted as exited, so the supervisor restarts it as it would any exit.
    /// </summary>
    public static InstanceProcess Adopt(InstanceProcessDescription description, SafePipeHandle stdout, SafePipeHandle stderr, Action<string, string> onOutput)
    {
        if (description.ProcessGroup != description.Pid)
            throw new ArgumentException($"instance pid {description.Pid} is not its group's leader ({description.ProcessGroup}): not an instance this agent starts", nameof(description));
        if (!System.Net.IPEndPoint.TryParse(description.Endpoint, out var endpoint))
            throw new ArgumentException($"instance pid {description.Pid}: '{description.Endpoint}' is not an endpoint", nameof(description));
        // The pidfd first, then the start time: once the pidfd is open the pid cannot be reused under it.
        var watch = ProcessWatch.TryOpen(description.Pid);
        if (watch is not null && ProcStat.Read(description.Pid)?.StartTicks != description.StartTicks)
        {
            watch.Dispose();
            watch = null;
        }
        return new InstanceProcess(description.Pid, description.StartTicks, description.Started, endpoint, description.ExitStatusFile,
            process: null, watch, new AnonymousPipeClientStream(PipeDirection.In, stdout), new AnonymousPipeClientStream(PipeDirection.In, stderr), onOutput, ipc: null, notify: null);
    }

    /// <summary>
    /// Lets the instance go to another owner, running: stops reading its pipes (what was read of a line is delivered
    /// first, the rest stays in the pipe for the next reader) and stops watching it. Send the pipes with
    /// FdPassing, then dispose this object: it closes only its own copies and never signals the instance.
    /// </summary>
    public async Task<InstanceHandover> HandOverAsync()
    {
        if (HasExited) throw new InvalidOperationException($"instance pid {Pid} has exited: there is nothing to hand over");
        _handedOver = true;
        await _stdout.StopAsync();
        await _stderr.StopAsync();
        await _watching.CancelAsync();
        var description = new InstanceProcessDescription(Pid, Pid, _startTicks, Started, Endpoint.ToString(), _exitStatusPath);
        return new InstanceHandover(description, _stdout.Handle, _stderr.Handle);
    }

    /// <summary>
    /// The handover did not happen (the new agent refused, failed or died before it committed): a new object over the
    /// same process, pipes, IPC and notify socket, reading on from where <see cref="HandOverAsync"/> stopped. This one
    /// is spent (its pipes are the new one's now; disposing it does nothing).
    /// </summary>
    public InstanceProcess TakeBack()
    {
        if (!_handedOver) throw new InvalidOperationException($"instance pid {Pid} was not handed over: there is nothing to take back");
        _disposed = true;
        return new InstanceProcess(Pid, _startTicks, Started, Endpoint, _exitStatusPath, _process, _watch,
            _stdout.Pipe, _stderr.Pipe, _onOutput, _ipc, _notify);
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
        if (_handedOver) throw new InvalidOperationException($"instance pid {Pid} was handed over: its new owner stops it");
        if (!GroupAlive()) return;
        if (signal == SigKill) _killed = true;
        LibC.Kill(-Pid, signal);
        var clock = Stopwatch.StartNew();
        while (GroupAlive() && clock.Elapsed < killTimeout)
            await Task.Delay(TimeSpan.FromMilliseconds(10));
        if (GroupAlive())
        {
            _killed = true;
            LibC.Kill(-Pid, SigKill);
        }
        await Exited;
    }

    /// <summary>
    /// The leader (the wrapper) first: while it has not exited, its pid and so the group id cannot be another's.
    /// After it, kill(-pgid, 0) finds members left behind (the app, when only the wrapper was killed).
    /// </summary>
    private bool GroupAlive()
    {
        // Exited (or disposed, which stops it first) says so without asking a Process object that may be disposed.
        var leaderExited = HasExited || _disposed || (_process?.HasExited ?? _watch?.HasExited ?? true);
        if (!leaderExited) return true;
        return LibC.Kill(-Pid, 0);
    }

    /// <summary>Resident memory of every process in the instance's group, in bytes.</summary>
    public long RssBytes() =>
        ProcStat.AllPids().Select(ProcStat.Read).Where(p => p?.ProcessGroup == Pid).Sum(p => p!.Value.RssBytes);

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return; // the supervisor may dispose a failed start, then again on its way out
        if (!_handedOver && !HasExited) await StopAsync(SigKill, TimeSpan.Zero);
        _disposed = true;
        await _watching.CancelAsync();
        await _stdout.DisposeAsync();
        await _stderr.DisposeAsync();
        _ipc?.Dispose();
        _notify?.Dispose();
        _watch?.Dispose();
        _process?.Dispose();
        if (!_handedOver) File.Delete(_exitStatusPath); // read into ExitCode already; the next owner's, if handed over
    }
}
