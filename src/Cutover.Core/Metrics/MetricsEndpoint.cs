using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Cutover.Metrics;

/// <summary>
/// `GET /metrics` on the metrics address: a Kestrel of its own, apart from the proxy's listeners and the control
/// socket, answering nothing else (404). The socket is bound here, before Kestrel gets it, so a port in use is the
/// agent's start-up error (exit 1) rather than a failure found later.
/// </summary>
public sealed class MetricsEndpoint : IAsyncDisposable
{
    private readonly WebApplication _web;
    private readonly Socket _socket;

    private MetricsEndpoint(WebApplication web, Socket socket, IPEndPoint bound)
    {
        _web = web;
        _socket = socket;
        Bound = bound;
    }

    /// <summary>The address it listens on (the port the kernel chose, for :0).</summary>
    public IPEndPoint Bound { get; }

    public static async Task<MetricsEndpoint> StartAsync(IPEndPoint address, Func<CancellationToken, Task<byte[]>> scrape, ILoggerFactory loggers, CancellationToken cancellationToken)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(address);
            socket.Listen(128);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new DeployException(e.SocketErrorCode == SocketError.AddressAlreadyInUse
                ? $"cannot serve metrics on {address}: the address is in use (another agent, or another exporter); choose another with --metrics-listen or {MetricsAddress.Variable}, or turn them off with --metrics-listen off"
                : $"cannot serve metrics on {address}: {e.Message}");
        }
        var builder = Cutover.Platform.UnwatchedWebHost.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggers);
        builder.WebHost.ConfigureKestrel(k => k.ListenHandle((ulong)socket.SafeHandle.DangerousGetHandle()));
        var web = builder.Build();
        web.MapGet("/metrics", async (HttpContext context) =>
        {
            var text = await scrape(context.RequestAborted);
            context.Response.ContentType = AgentMetrics.ContentType;
            await context.Response.Body.WriteAsync(text, context.RequestAborted);
        });
        try
        {
            await web.StartAsync(cancellationToken);
        }
        catch
        {
            await web.DisposeAsync();
            socket.Dispose();
            throw;
        }
        return new MetricsEndpoint(web, socket, (IPEndPoint)socket.LocalEndPoint!);
    }

    public async ValueTask DisposeAsync()
    {
        await _web.StopAsync();
        await _web.DisposeAsync();
        _socket.Dispose();
    }
}
