using System.Globalization;
using System.Net;
using Cutover.Platform;
using Cutover.Supervisor;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Cutover.Containers;

/// <summary>
/// One instance as a Docker container: reached at its address on the app's bridge network, watched through the
/// Engine API (wait for exit, HEALTHCHECK status, log stream), stopped with its stop signal and then removed.
/// </summary>
public sealed class ContainerInstance : IRunningInstance
{
    private readonly DockerClient _docker;
    private readonly CancellationTokenSource _watching = new();
    private readonly bool _hasHealthcheck;
    private int? _exitCode;
    private string? _lastErrorLine;

    private ContainerInstance(DockerClient docker, string id, int pid, IPEndPoint endpoint, DateTimeOffset started, bool hasHealthcheck)
    {
        _docker = docker;
        Id = id;
        Pid = pid;
        Endpoint = endpoint;
        Started = started;
        _hasHealthcheck = hasHealthcheck;
        Exited = WaitAsync();
    }

    public string Id { get; }
    public int Pid { get; }
    public string Description => $"container {Id[..12]} (pid {Pid})";
    public DateTimeOffset Started { get; }
    public Task Exited { get; }
    public bool HasExited => Exited.IsCompleted;
    public int? ExitCode => HasExited ? _exitCode : null;
    public IPEndPoint Endpoint { get; }
    public Task? ReadySignal => null;
    public bool SaysStopping => false;

    public string ExitDescription(string? when = null) =>
        $"container exited with code {ExitCode}{(when is null ? "" : " " + when)}{(Volatile.Read(ref _lastErrorLine) is { } line ? $" (stderr: {line.Trim()})" : "")}";

    /// <summary>
    /// Wraps a running container (just started, or found by its labels) and follows its logs: all of them for one just
    /// started, those from <paramref name="logsSince"/> on for one adopted.
    /// </summary>
    internal static async Task<ContainerInstance> AttachAsync(DockerClient docker, string id, string network, int port, Action<string, string> onOutput, CancellationToken cancellationToken,
        DateTimeOffset? logsSince = null)
    {
        var inspect = await docker.Containers.InspectContainerAsync(id, cancellationToken);
        if (inspect.NetworkSettings?.Networks is not { } networks || !networks.TryGetValue(network, out var endpoint) || string.IsNullOrEmpty(endpoint.IPAddress))
            throw new DeployException($"container {id[..12]} has no address on network {network}");
        var started = DateTimeOffset.TryParse(inspect.State?.StartedAt, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var at) ? at : DateTimeOffset.UtcNow;
        var instance = new ContainerInstance(docker, id, (int)(inspect.State?.Pid ?? 0), new IPEndPoint(IPAddress.Parse(endpoint.IPAddress), port), started,
            inspect.Config?.Healthcheck?.Test is { Count: > 0 } test && test[0] != "NONE");
        _ = instance.FollowLogsAsync(onOutput, logsSince);
        return instance;
    }

    private async Task WaitAsync()
    {
        try
        {
            var result = await _docker.Containers.WaitContainerAsync(Id, _watching.Token);
            _exitCode = (int)result.StatusCode;
        }
        catch (Exception e) when (e is DockerApiException or OperationCanceledException or HttpRequestException or IOException)
        {
            _exitCode = await ExitCodeFromInspectAsync();
        }
    }

    private async Task<int?> ExitCodeFromInspectAsync()
    {
        try
        {
            var inspect = await _docker.Containers.InspectContainerAsync(Id, CancellationToken.None);
            return (int?)inspect.State?.ExitCode;
        }
        catch (DockerApiException)
        {
            return null;
        }
    }

    private async Task FollowLogsAsync(Action<string, string> onOutput, DateTimeOffset? since)
    {
        try
        {
            var parameters = new ContainerLogsParameters { Follow = true, ShowStdout = true, ShowStderr = true };
            // Docker reads `since` as Unix seconds with an optional fraction (nanoseconds).
            if (since is { } from)
                parameters.Since = $"{from.ToUnixTimeSeconds()}.{(from.ToUnixTimeMilliseconds() % 1000) * 1_000_000:D9}";
            using var stream = await _docker.Containers.GetContainerLogsAsync(Id, parameters, _watching.Token);
            var buffer = new byte[8192];
            var pending = new Dictionary<MultiplexedStream.TargetStream, string>();
            while (true)
            {
                var read = await stream.ReadOutputAsync(buffer, 0, buffer.Length, _watching.Token);
                if (read.EOF) break;
                var name = read.Target == MultiplexedStream.TargetStream.StandardError ? "err" : "out";
                var text = pending.GetValueOrDefault(read.Target, "") + System.Text.Encoding.UTF8.GetString(buffer, 0, read.Count);
                var lines = text.Split('\n');
                for (var i = 0; i < lines.Length - 1; i++)
                {
                    var line = lines[i].TrimEnd('\r');
                    if (name == "err" && line.Trim().Length > 0) Volatile.Write(ref _lastErrorLine, line);
                    onOutput(name, line);
                }
                pending[read.Target] = lines[^1];
            }
        }
        catch (Exception e) when (e is DockerApiException or OperationCanceledException or HttpRequestException or IOException or ObjectDisposedException)
        {
            // The log stream ends with the container, or when Cutover lets go of it.
        }
    }

    public async Task<string?> HealthProblemAsync(CancellationToken cancellationToken)
    {
        if (!_hasHealthcheck) return null;
        var inspect = await _docker.Containers.InspectContainerAsync(Id, cancellationToken);
        var health = inspect.State?.Health;
        return health?.Status switch
        {
            "healthy" or null => null,
            "starting" => "the container healthcheck has not passed yet",
            var status => $"the container healthcheck says {status}" + (health.Log?.LastOrDefault()?.Output is { Length: > 0 } output ? $": {output.Trim()}" : ""),
        };
    }

    /// <summary>stop_signal, kill after kill_timeout (Docker's own stop), then the container is removed.</summary>
    public async Task StopAsync(int signal, TimeSpan killTimeout)
    {
        try
        {
            if (!HasExited)
            {
                if (signal == 9 || killTimeout == TimeSpan.Zero)
                    await _docker.Containers.KillContainerAsync(Id, new ContainerKillParameters { Signal = "SIGKILL" }, CancellationToken.None);
                else
                    await _docker.Containers.StopContainerAsync(Id, new ContainerStopParameters { WaitBeforeKillSeconds = (uint)Math.Ceiling(killTimeout.TotalSeconds) }, CancellationToken.None);
            }
            await Exited.WaitAsync(killTimeout + TimeSpan.FromSeconds(10));
        }
        catch (DockerContainerNotFoundException)
        {
        }
        catch (TimeoutException)
        {
        }
        await RemoveAsync();
    }

    private async Task RemoveAsync()
    {
        try
        {
            await _docker.Containers.RemoveContainerAsync(Id, new ContainerRemoveParameters { Force = true }, CancellationToken.None);
        }
        catch (DockerContainerNotFoundException)
        {
        }
        catch (DockerApiException e) when (e.StatusCode == HttpStatusCode.Conflict)
        {
            // removal already in progress
        }
    }

    /// <summary>Resident memory of every process in the container (found by the container id in their cgroup).</summary>
    public long RssBytes() =>
        ProcStat.AllPids().Where(pid => InContainer(pid)).Select(ProcStat.Read).Sum(p => p?.RssBytes ?? 0);

    private bool InContainer(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cgroup").Contains(Id, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Stops following the container; it keeps running (a restarted agent adopts it).</summary>
    public ValueTask LetGoAsync()
    {
        if (Volatile.Read(ref _disposed) == 0) _watching.Cancel();
        return ValueTask.CompletedTask;
    }

    private int _disposed;

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        if (!HasExited) await StopAsync(9, TimeSpan.Zero);
        else await RemoveAsync();
        _watching.Cancel();
        _watching.Dispose();
    }
}
