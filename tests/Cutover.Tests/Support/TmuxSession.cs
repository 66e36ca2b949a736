using System.Diagnostics;

namespace Cutover.Tests.Support;

/// <summary>
/// A real terminal for a test: one command in a detached tmux session on a tmux server of its own (its own socket, so
/// parallel tests and a developer's tmux never meet), read with capture-pane and typed into with send-keys. Disposing
/// kills that server, and with it the command if it still runs.
/// </summary>
public sealed class TmuxSession : IDisposable
{
    private readonly string _socket = $"cutover-test-{Environment.ProcessId}-{Guid.NewGuid():N}"[..40];
    /// <summary>The server's socket file, which kill-server leaves behind in /tmp/tmux-UID.</summary>
    private readonly string _socketPath;

    /// <param name="environment">Set for the command (tmux's own TERM stays: the command sees a real terminal type).</param>
    public TmuxSession(string workingDir, int width, int height, IReadOnlyDictionary<string, string> environment, params string[] command)
    {
        var arguments = new List<string> { "new-session", "-d", "-s", "test", "-x", width.ToString(), "-y", height.ToString(), "-c", workingDir };
        foreach (var (key, value) in environment) arguments.AddRange(["-e", $"{key}={value}"]);
        arguments.Add(string.Join(' ', command));
        Run(arguments.ToArray());
        _socketPath = Run("display-message", "-p", "#{socket_path}").Trim();
    }

    /// <summary>The pane's text now, without colours or attributes.</summary>
    public string Capture() => Run("capture-pane", "-p", "-t", "test");

    /// <summary>Keys as tmux names them: "q", "Up", "Down", "Escape", "C-c".</summary>
    public void SendKeys(params string[] keys) => Run(["send-keys", "-t", "test", .. keys]);

    private string Run(params string[] arguments)
    {
        var start = new ProcessStartInfo("tmux") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-L");
        start.ArgumentList.Add(_socket);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(10_000))
        {
            process.Kill();
            throw new TimeoutException($"tmux {string.Join(' ', arguments)} did not finish within 10 s");
        }
        if (process.ExitCode != 0) throw new InvalidOperationException($"tmux {string.Join(' ', arguments)} exited {process.ExitCode}: {stderr.Result}");
        return stdout.Result;
    }

    public void Dispose()
    {
        try
        {
            Run("kill-server");
        }
        catch (InvalidOperationException)
        {
            // The server is gone already: the session's command ended and it had nothing left to serve.
        }
        if (_socketPath.Length > 0) File.Delete(_socketPath);
    }
}
