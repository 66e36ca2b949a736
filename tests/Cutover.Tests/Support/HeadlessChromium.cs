using System.Diagnostics;

namespace Cutover.Tests.Support;

/// <summary>Debian's `chromium`, headless, rendering a local file to a PNG screenshot (the deploy report's test).</summary>
public static class HeadlessChromium
{
    /// <summary>Renders <paramref name="htmlPath"/> at the window size and returns the PNG's path; the browser is bounded by a timeout and killed by pid past it.</summary>
    public static async Task<string> ScreenshotAsync(string htmlPath, string pngPath, int width = 1200, int height = 900)
    {
        // A profile of its own per run, so parallel runs and a developer's browser never share one.
        var profile = Directory.CreateTempSubdirectory("cutover-chromium-");
        try
        {
            var start = new ProcessStartInfo("chromium")
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                ArgumentList =
                {
                    "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", $"--user-data-dir={profile.FullName}",
                    $"--screenshot={pngPath}", $"--window-size={width},{height}", new Uri(Path.GetFullPath(htmlPath)).AbsoluteUri,
                },
            };
            using var process = Process.Start(start)!;
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            try
            {
                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            }
            catch (TimeoutException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            if (!File.Exists(pngPath)) throw new InvalidOperationException($"chromium wrote no screenshot (exit {process.ExitCode}): {await stdout}{await stderr}");
            return pngPath;
        }
        finally
        {
            profile.Delete(recursive: true);
        }
    }
}
