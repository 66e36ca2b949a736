using System.Net;
using System.Net.Sockets;
using Cutover.Config;

namespace Cutover.Supervisor;

/// <summary>
/// Decides when a new instance may get traffic: http (the health path answers 2xx), tcp (the port accepts),
/// notify (READY=1) or message (process.send('ready')). For notify and message the port must also accept,
/// so an app that ignores port_env fails with a clear reason instead of being routed to.
/// http and tcp probe at once, then again whenever the instance writes a line (apps say "listening on ..." once they
/// listen, so the probe that finds it ready goes then) and at the latest every <paramref name="poll"/> (50 ms).
/// </summary>
public sealed class ReadinessProbe(HttpClient http, TimeSpan? poll = null)
{
    private readonly TimeSpan _poll = poll ?? TimeSpan.FromMilliseconds(50);

    /// <summary>Null when ready; otherwise why not.</summary>
    /// <param name="output">Pulsed on each line the instance writes: the next probe goes then rather than at the next poll.</param>
    public async Task<string?> WaitReadyAsync(InstanceSpec spec, IRunningInstance process, CancellationToken cancellationToken, OutputSignal? output = null)
    {
        if (!spec.ServesHttp) return await WaitProcessTypeReadyAsync(spec, process, cancellationToken);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(spec.Run.ReadyTimeout);
        string lastProblem = NothingListens(spec, process);
        try
        {
            if (spec.Run.Ready is ReadinessKind.Notify or ReadinessKind.Message && process.ReadySignal is { } signal)
            {
                var first = await Task.WhenAny(signal, process.Exited).WaitAsync(deadline.Token);
                if (first == process.Exited) return ExitedEarly(process);
            }
            while (true)
            {
                if (process.HasExited) return ExitedEarly(process);
                // Both gate traffic: the app's own answer, and the runtime's healthcheck (a container HEALTHCHECK).
                var problem = spec.Run.Ready == ReadinessKind.Http
                    ? await HttpProblemAsync(spec, process, deadline.Token)
                    : await TcpProblemAsync(spec, process, deadline.Token);
                problem ??= await process.HealthProblemAsync(deadline.Token);
                if (problem is null) return null;
                lastProblem = problem;
                if (output is null) await Task.Delay(_poll, deadline.Token);
                else await output.WaitAsync(_poll, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            if (process.HasExited) return ExitedEarly(process);
            var waitingFor = spec.Run.Ready switch
            {
                ReadinessKind.Notify when process.ReadySignal is { IsCompleted: false } => "it never sent READY=1 to NOTIFY_SOCKET",
                ReadinessKind.Message when process.ReadySignal is { IsCompleted: false } => "it never called process.send('ready')",
                _ => lastProblem,
            };
            return $"not ready within {Duration.Format(spec.Run.ReadyTimeout)}: {waitingFor}";
        }
    }

    /// <summary>
    /// A process type listens nowhere: ready on its word (notify, message) or, with ready: none, once it has stayed
    /// alive for min_uptime, so a worker that dies at start fails the deploy instead of counting as started.
    /// </summary>
    private static async Task<string?> WaitProcessTypeReadyAsync(InstanceSpec spec, IRunningInstance process, CancellationToken cancellationToken)
    {
        var waitFor = spec.Run.Ready == ReadinessKind.None || process.ReadySignal is null
            ? Task.Delay(spec.Run.MinUptime, cancellationToken)
            : process.ReadySignal.WaitAsync(spec.Run.ReadyTimeout, cancellationToken);
        try
        {
            var first = await Task.WhenAny(waitFor, process.Exited);
            if (first == process.Exited || process.HasExited) return ExitedEarly(process);
            await first; // a timeout or a cancel surfaces here
            return null;
        }
        catch (TimeoutException)
        {
            return $"not ready within {Duration.Format(spec.Run.ReadyTimeout)}: " +
                   (spec.Run.Ready == ReadinessKind.Notify ? "it never sent READY=1 to NOTIFY_SOCKET" : "it never called process.send('ready')");
        }
    }

    /// <summary>One liveness probe: null when healthy.</summary>
    public async Task<string?> ProbeAsync(InstanceSpec spec, IRunningInstance process, CancellationToken cancellationToken)
    {
        // A process type has no port to probe: its liveness is its process (exit, memory, STOPPING=1).
        if (!spec.ServesHttp) return await process.HealthProblemAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(spec.Health.Timeout);
        try
        {
            var problem = spec.Run.Ready == ReadinessKind.Tcp
                ? await TcpProblemAsync(spec, process, timeout.Token)
                : await HttpProblemAsync(spec, process, timeout.Token);
            return problem ?? await process.HealthProblemAsync(timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"{spec.Health.Path} did not answer within {Duration.Format(spec.Health.Timeout)}";
        }
    }

    private static string NothingListens(InstanceSpec spec, IRunningInstance process) =>
        process is InstanceProcess
            ? $"nothing listens on {process.Endpoint} (does the app read ${spec.Run.PortEnv}?)"
            : $"nothing listens on {process.Endpoint} (is docker.port the port the app listens on inside the container?)";

    private async Task<string?> HttpProblemAsync(InstanceSpec spec, IRunningInstance process, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await http.GetAsync($"http://{process.Endpoint}{spec.Health.Path}", HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            return response.IsSuccessStatusCode ? null : $"{spec.Health.Path} answered {(int)response.StatusCode}";
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
        {
            return NothingListens(spec, process);
        }
        catch (HttpRequestException e)
        {
            return $"{spec.Health.Path}: {e.Message}";
        }
    }

    private static async Task<string?> TcpProblemAsync(InstanceSpec spec, IRunningInstance process, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(process.Endpoint, cancellationToken);
            return null;
        }
        catch (SocketException)
        {
            return NothingListens(spec, process);
        }
    }

    private static string ExitedEarly(IRunningInstance process) =>
        process.ExitDescription("before it was ready");
}

/// <summary>
/// That an instance wrote output since the readiness probe last looked: at most one pending pulse, however many lines
/// came, so a chatty start costs one extra probe, not one per line.
/// </summary>
public sealed class OutputSignal
{
    private readonly SemaphoreSlim _pulse = new(0, 1);

    public void Pulse()
    {
        if (_pulse.CurrentCount > 0) return;
        try
        {
            _pulse.Release();
        }
        catch (SemaphoreFullException)
        {
            // Another line pulsed it between the check and the release: one pending pulse is all it holds.
        }
    }

    /// <summary>Until a pulse (taking it) or <paramref name="timeout"/>, whichever comes first.</summary>
    public Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _pulse.WaitAsync(timeout, cancellationToken);
}
