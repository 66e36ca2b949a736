using System.IO.Pipes;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Cutover.Supervisor;

/// <summary>
/// Reads one of an instance's output pipes (stdout or stderr) line by line. Unlike Process.BeginOutputReadLine it can
/// be stopped without closing the pipe and without losing a byte: a handover (issue 12) stops it, flushes the part
/// of a line it already read, and sends the pipe's descriptor on, so the next owner reads exactly from there.
/// </summary>
internal sealed class OutputPump
{
    private readonly PipeStream _pipe;
    private readonly Action<string> _onLine;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reading;

    public OutputPump(PipeStream pipe, Action<string> onLine)
    {
        _pipe = pipe;
        _onLine = onLine;
        _reading = Task.Run(() => ReadAsync(_stop.Token));
    }

    /// <summary>The pipe (read end), still open after <see cref="StopAsync"/>: what a handover sends.</summary>
    public SafePipeHandle Handle => _pipe.SafePipeHandle;

    /// <summary>The pipe itself, for a pump that reads on from where this stopped (a handover taken back).</summary>
    public PipeStream Pipe => _pipe;

    /// <summary>Completes when the writers have all closed their end (the instance and its children are gone).</summary>
    public Task Completed => _reading;

    private async Task ReadAsync(CancellationToken stop)
    {
        var decoder = Encoding.UTF8.GetDecoder();
        var bytes = new byte[4096];
        var chars = new char[Encoding.UTF8.GetMaxCharCount(bytes.Length)];
        var line = new StringBuilder();
        try
        {
            while (true)
            {
                int read;
                try
                {
                    // A cancelled read has taken nothing from the pipe: what it would have read stays for the next owner.
                    read = await _pipe.ReadAsync(bytes, stop);
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    return;
                }
                catch (IOException)
                {
                    return;
                }
                if (read == 0) return;
                var count = decoder.GetChars(bytes, 0, read, chars, 0, flush: false);
                for (var i = 0; i < count; i++)
                {
                    if (chars[i] != '\n')
                    {
                        line.Append(chars[i]);
                        continue;
                    }
                    if (line.Length > 0 && line[^1] == '\r') line.Length--;
                    _onLine(line.ToString());
                    line.Clear();
                }
            }
        }
        finally
        {
            // What was read of a line that never ended (the instance exited, or the pipe goes to another owner) is
            // still the instance's output: flushed as a line of its own rather than lost.
            if (line.Length > 0) _onLine(line.ToString());
        }
    }

    /// <summary>Stops reading (the pipe stays open) once the read in progress has given back or delivered its bytes.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _reading;
    }

    /// <summary>Stops and closes this process's copy of the pipe.</summary>
    public async Task DisposeAsync()
    {
        await StopAsync();
        await _pipe.DisposeAsync();
        _stop.Dispose();
    }
}
