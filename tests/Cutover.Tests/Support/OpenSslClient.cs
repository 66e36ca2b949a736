using System.Diagnostics;
using System.Net;
using System.Text;

namespace Cutover.Tests.Support;

/// <summary>
/// `openssl s_client` as a real TLS client a test drives: its stdin written piece by piece (a request, or one of its
/// command letters on a line of its own: K and k send a TLS 1.3 KeyUpdate with and without update_requested, R starts a
/// TLS 1.2 renegotiation), its stdout and stderr collected as they come. The process is killed by its pid on dispose.
/// </summary>
public sealed class OpenSslClient : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _errors = new();
    private readonly Task _reading;

    private OpenSslClient(Process process)
    {
        _process = process;
        _reading = Task.WhenAll(CollectAsync(process.StandardOutput.BaseStream, _output), CollectAsync(process.StandardError.BaseStream, _errors));
    }

    /// <summary>`openssl s_client -connect ENDPOINT` with <paramref name="options"/>, started.</summary>
    public static OpenSslClient Start(IPEndPoint endpoint, params string[] options)
    {
        var start = new ProcessStartInfo("openssl", ["s_client", "-connect", $"{endpoint.Address}:{endpoint.Port}", .. options])
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        return new OpenSslClient(Process.Start(start)!);
    }

    /// <summary>
    /// One whole run: <paramref name="input"/> on stdin, then (with -ign_eof among the options) everything until the
    /// server closes; stdout and stderr together.
    /// </summary>
    public static async Task<string> RunAsync(IPEndPoint endpoint, string input, CancellationToken cancellationToken, params string[] options)
    {
        await using var client = Start(endpoint, options);
        await client.WriteAsync(input, cancellationToken);
        await client.EndInputAsync(cancellationToken);
        return client.Output + client.Errors;
    }

    /// <summary>What s_client wrote to stdout so far (session details with -msg's trace, and the server's bytes).</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>What s_client wrote to stderr so far (connection errors, and KEYUPDATE / RENEGOTIATING for its commands).</summary>
    public string Errors
    {
        get { lock (_errors) return _errors.ToString(); }
    }

    public bool HasExited => _process.HasExited;

    public async Task WriteAsync(string text, CancellationToken cancellationToken)
    {
        await _process.StandardInput.BaseStream.WriteAsync(Encoding.ASCII.GetBytes(text), cancellationToken);
        await _process.StandardInput.BaseStream.FlushAsync(cancellationToken);
    }

    /// <summary>
    /// A command letter (K, k, R) as s_client takes it: alone in one read of stdin, so it is written only once the
    /// output shows the previous exchange is over, and the caller waits for <paramref name="acknowledgement"/> on
    /// stderr before writing anything else.
    /// </summary>
    public async Task CommandAsync(char letter, string acknowledgement, CancellationToken cancellationToken)
    {
        var before = Count(Errors, acknowledgement);
        await WriteAsync(letter + "\n", cancellationToken);
        await WaitForAsync(() => Count(Errors, acknowledgement) > before, $"s_client to acknowledge {letter} with {acknowledgement}", cancellationToken);
    }

    /// <summary>Waits (at most 10 s) until stdout holds <paramref name="text"/> <paramref name="times"/> times.</summary>
    public Task WaitForOutputAsync(string text, CancellationToken cancellationToken, int times = 1) =>
        WaitForAsync(() => Count(Output, text) >= times, $"s_client's output to show \"{text}\" {times} time(s)", cancellationToken);

    private async Task WaitForAsync(Func<bool> condition, string what, CancellationToken cancellationToken)
    {
        // An s_client that has exited (and whose output is all read) will show nothing more: no need to wait out the bound.
        await Wait.WithinAsync(() => condition() || _process.HasExited && _reading.IsCompleted, TimeSpan.FromSeconds(10), TimeSpan.FromMilliseconds(20), cancellationToken);
        if (!condition())
            throw new TimeoutException($"{(_process.HasExited ? "s_client exited" : "waited 10 s")} without {what}; stdout:\n{Output}\nstderr:\n{Errors}");
    }

    /// <summary>Closes stdin (s_client then says DONE and closes, or with -ign_eof waits for the server) and waits (10 s) for it to exit.</summary>
    public async Task EndInputAsync(CancellationToken cancellationToken)
    {
        _process.StandardInput.Close();
        using var within = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        within.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            await _process.WaitForExitAsync(within.Token);
            await _reading.WaitAsync(within.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"s_client did not exit within 10 s of its input's end; stdout:\n{Output}\nstderr:\n{Errors}");
        }
    }

    public static int Count(string text, string what)
    {
        var count = 0;
        for (var at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal)) count++;
        return count;
    }

    private static async Task CollectAsync(Stream stream, StringBuilder into)
    {
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await stream.ReadAsync(buffer)) > 0)
            lock (into) into.Append(Encoding.Latin1.GetString(buffer, 0, read));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited) _process.Kill();
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(5));
            await _reading.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            // gone already
        }
        _process.Dispose();
    }
}
