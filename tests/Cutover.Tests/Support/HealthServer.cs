using System.Net;
using System.Net.Sockets;

namespace Cutover.Tests.Support;

/// <summary>A real HTTP server on loopback whose answer a test decides per request.</summary>
public sealed class HealthServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<int> _status;
    private int _requests;

    public HealthServer(Func<int> status)
    {
        _status = status;
        Port = FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        _ = Task.Run(ServeAsync);
    }

    public int Port { get; }
    public string Url => $"http://127.0.0.1:{Port}/health";
    public int Requests => Volatile.Read(ref _requests);

    private async Task ServeAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (HttpListenerException)
            {
                return;
            }
            Interlocked.Increment(ref _requests);
            context.Response.StatusCode = _status();
            context.Response.Close();
        }
    }

    public static int FreePort() => Cutover.Platform.LoopbackPort.Free();

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
    }
}
