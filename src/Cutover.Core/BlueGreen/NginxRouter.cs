using System.Diagnostics;
using System.Text;
using Cutover.Config;
using Cutover.Platform;

namespace Cutover.BlueGreen;

/// <summary>
/// `router: nginx`: points an nginx upstream at a set of instance ports. The upstream file is written
/// atomically (temp file, rename), checked with `test`; on failure the previous file is put back and nothing is
/// reloaded. Only then `reload`. Note the trade-off the README measures: an nginx reload closes keep-alive
/// connections, which can fail requests; keeping nginx in front of Cutover's proxy avoids reloading at all.
/// </summary>
public sealed class NginxRouter(NginxRouterConfig config)
{
    public string Render(IEnumerable<System.Net.IPEndPoint> endpoints)
    {
        var text = new StringBuilder();
        text.AppendLine("# Written by Cutover on every blue-green switch; edits are overwritten.");
        text.AppendLine($"upstream {config.UpstreamName} {{");
        foreach (var endpoint in endpoints) text.AppendLine($"    server {endpoint};");
        text.AppendLine("    keepalive 32;");
        text.AppendLine("}");
        return text.ToString();
    }

    /// <summary>Null when nginx now routes to <paramref name="endpoints"/>; otherwise why not (the old file is back).</summary>
    public async Task<string?> RouteAsync(IEnumerable<System.Net.IPEndPoint> endpoints, CancellationToken cancellationToken)
    {
        var file = config.UpstreamFile;
        var previous = File.Exists(file) ? await File.ReadAllTextAsync(file, cancellationToken) : null;
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        AtomicFile.WriteAllText(file, Render(endpoints));
        var (testOk, testOutput) = await ShellAsync(config.Test, cancellationToken);
        if (!testOk)
        {
            Restore(file, previous);
            return $"`{config.Test}` failed, so {file} was restored and nginx was not reloaded: {testOutput.Trim()}";
        }
        var (reloadOk, reloadOutput) = await ShellAsync(config.Reload, cancellationToken);
        if (!reloadOk)
        {
            Restore(file, previous);
            return $"`{config.Reload}` failed: {reloadOutput.Trim()}; {file} was restored";
        }
        return null;
    }

    private static void Restore(string file, string? previous)
    {
        if (previous is null) File.Delete(file);
        else AtomicFile.WriteAllText(file, previous);
    }

    private static async Task<(bool Ok, string Output)> ShellAsync(string command, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("/bin/sh", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        await process.WaitForExitAsync(cancellationToken);
        return (process.ExitCode == 0, await stdout + await stderr);
    }
}
