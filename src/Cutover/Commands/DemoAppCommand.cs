using System.CommandLine;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Cutover.Cli.Commands;

/// <summary>
/// `cutover demo-app` (hidden): the tiny web app the demo runs under the agent, so the demo needs no runtime
/// besides this binary. It listens on $PORT, answers /health, and says which VERSION (in its working
/// directory, the release) served each request; SIGINT/SIGTERM stop it gracefully.
/// </summary>
public static class DemoAppCommand
{
    public static Command Create()
    {
        var command = new Command("demo-app", "The demo's web app (listens on $PORT)") { Hidden = true };
        command.SetAction(async (parse, ct) =>
        {
            var builder = Cutover.Platform.UnwatchedWebHost.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls($"http://127.0.0.1:{Environment.GetEnvironmentVariable("PORT") ?? "5000"}");
            var app = builder.Build();
            var version = File.Exists("VERSION") ? File.ReadAllText("VERSION").Trim() : "unknown";
            app.MapGet("/health", () => "ok\n");
            app.MapGet("/", () => $"hello from {version} (pid {Environment.ProcessId})\n");
            await app.RunAsync(ct);
            return 0;
        });
        return command;
    }
}
