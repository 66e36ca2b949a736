using System.Net;
using Cutover.Acme;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Cutover.Tests.Support;

/// <summary>
/// Port 80 as pebble's validation authority sees it: a Kestrel on 127.0.0.1 that answers
/// /.well-known/acme-challenge/&lt;token&gt; from an <see cref="Http01Challenges"/>, the same map the proxy mounts.
/// Counts the distinct tokens it answered (pebble's VA asks more than once per challenge), so a test can tell an
/// order that needed validation from one that did not.
/// </summary>
public sealed class PebbleChallengeServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly HashSet<string> _tokens = [];

    private PebbleChallengeServer(WebApplication app, Http01Challenges challenges, int port)
    {
        _app = app;
        Challenges = challenges;
        Port = port;
    }

    public Http01Challenges Challenges { get; }
    public int Port { get; }

    /// <summary>How many different challenge tokens were answered.</summary>
    public int Answered
    {
        get
        {
            lock (_tokens) return _tokens.Count;
        }
    }

    public static async Task<PebbleChallengeServer> StartAsync()
    {
        var challenges = new Http01Challenges();
        var port = HealthServer.FreePort();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port));
        var app = builder.Build();
        PebbleChallengeServer? server = null;
        app.Run(async context =>
        {
            if (challenges.TryAnswer(context.Request.Path.Value ?? "", out var body))
            {
                lock (server!._tokens) server._tokens.Add(context.Request.Path.Value!);
                context.Response.ContentType = "text/plain";
                await context.Response.WriteAsync(body);
                return;
            }
            context.Response.StatusCode = 404;
        });
        server = new PebbleChallengeServer(app, challenges, port);
        await app.StartAsync();
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
