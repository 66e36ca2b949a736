using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using Cutover.Tests.Support;

namespace Cutover.Tests.Notify;

/// <summary>
/// A real HTTP server standing in for a Slack/Mattermost incoming webhook: records every POST's path and JSON body,
/// and answers 200 "ok", or (hang) holds each request unanswered for <see cref="HangFor"/> or until disposed.
/// </summary>
public sealed class WebhookReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public WebhookReceiver(bool hang = false)
    {
        Port = HealthServer.FreePort();
        _listener.Prefixes.Add($"http://127.0.0.1:{Port}/");
        _listener.Start();
        Hang = hang;
        _loop = Task.Run(LoopAsync);
    }

    public int Port { get; }
    public bool Hang { get; }
    public TimeSpan HangFor { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>A Slack-like URL whose path is the secret part.</summary>
    public string Url(string secret) => $"http://127.0.0.1:{Port}/services/T0/B0/{secret}";

    public ConcurrentQueue<(string Path, JsonElement Body)> Received { get; } = new();

    /// <summary>The bodies received for one event name.</summary>
    public IReadOnlyList<JsonElement> Of(string @event) => Received.Select(r => r.Body).Where(b => b.GetProperty("event").GetString() == @event).ToList();

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            _ = Task.Run(() => AnswerAsync(context));
        }
    }

    private async Task AnswerAsync(HttpListenerContext context)
    {
        try
        {
            using var reader = new StreamReader(context.Request.InputStream);
            var body = await reader.ReadToEndAsync();
            Received.Enqueue((context.Request.Url!.AbsolutePath, JsonDocument.Parse(body).RootElement.Clone()));
            if (Hang)
            {
                try
                {
                    await Task.Delay(HangFor, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
            context.Response.StatusCode = 200;
            await context.Response.OutputStream.WriteAsync("ok"u8.ToArray());
            context.Response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            // The client gave up (its timeout) or the receiver is closing.
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Close();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
        }
        _stop.Dispose();
    }
}
