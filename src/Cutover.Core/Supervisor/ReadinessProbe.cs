using System.Net;
using System.Net.Sockets;
using Cutover.Config;

namespace Cutover.Supervisor;

/// <summary>
/// Decides when a new instance may get traffic: http (the health path answers 2xx), tcp (the port accepts),
/// notify (READY=1) or message (process.send('ready')). For notify and message the port must also accept,
/// so an app that ignores port_env fails with a clear reason instead of being routed to.
/// </summary>
public sealed class ReadinessProbe(HttpClient http)
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(50);

    /// <summary>Null when ready; otherwise why not.</summary>
    public async Task<string?> WaitReadyAsync(InstanceSpec spec, InstanceProcess process, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(spec.Run.ReadyTimeout);
        string lastProblem = $"nothing listens on 127.0.0.1:{spec.Port} (does the app read ${spec.Run.PortEnv}?)";
        try
        {
            if (spec.Run.Ready is ReadinessKind.Notify or ReadinessKind.Message)
            {
                var signal = spec.Run.Ready == ReadinessKind.Notify ? process.Notify!.Ready : process.Ipc!.Ready;
                var first = await Task.WhenAny(signal, process.Exited).WaitAsync(deadline.Token);
                if (first == process.Exited) return ExitedEarly(process);
            }
            while (true)
            {
                if (process.HasExited) return ExitedEarly(process);
                var problem = spec.Run.Ready == ReadinessKind.Http
                    ? await HttpProblemAsync(spec, deadline.Token)
                    : await TcpProblemAsync(spec.Port, deadline.Token);
                if (problem is null) return null;
                lastProblem = problem;
                await Task.Delay(Poll, deadline.Token);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            if (process.HasExited) return ExitedEarly(process);
            var waitingFor = spec.Run.Ready switch
            {
                ReadinessKind.Notify when !process.Notify!.Ready.IsCompleted => "it never sent READY=1 to NOTIFY_SOCKET",
                ReadinessKind.Message when !process.Ipc!.Ready.IsCompleted => "it never called process.send('ready')",
                _ => lastProblem,
            };
            return $"not ready within {Duration.Format(spec.Run.ReadyTimeout)}: {waitingFor}";
        }
    }

    /// <summary>One liveness probe: null when healthy.</summary>
    public async Task<string?> ProbeAsync(InstanceSpec spec, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(spec.Health.Timeout);
        try
        {
            return spec.Run.Ready == ReadinessKind.Tcp
                ? await TcpProblemAsync(spec.Port, timeout.Token)
                : await HttpProblemAsync(spec, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"{spec.Health.Path} did not answer within {Duration.Format(spec.Health.Timeout)}";
        }
    }

    private async Task<string?> HttpProblemAsync(InstanceSpec spec, CancellationToken cancellationToken)
    {
        try
        {
            using var response = await http.GetAsync($"http://127.0.0.1:{spec.Port}{spec.Health.Path}", HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            return response.IsSuccessStatusCode ? null : $"{spec.Health.Path} answered {(int)response.StatusCode}";
        }
        catch (HttpRequestException e) when (e.InnerException is SocketException { SocketErrorCode: SocketError.ConnectionRefused })
        {
            return $"nothing listens on 127.0.0.1:{spec.Port} (does the app read ${spec.Run.PortEnv}?)";
        }
        catch (HttpRequestException e)
        {
            return $"{spec.Health.Path}: {e.Message}";
        }
    }

    private static async Task<string?> TcpProblemAsync(int port, CancellationToken cancellationToken)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
            return null;
        }
        catch (SocketException)
        {
            return $"nothing listens on 127.0.0.1:{port}";
        }
    }

    private static string ExitedEarly(InstanceProcess process) =>
        process.ExitDescription("before it was ready");
}
