using System.Net.Sockets;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Cutover.Supervisor;

/// <summary>
/// Our end of a Node IPC channel (NODE_CHANNEL_FD, JSON serialization): newline-separated JSON values. An
/// unmodified app calling process.send('ready') is seen as ready, exactly as under PM2's wait_ready.
/// </summary>
public sealed class NodeIpcChannel : IDisposable
{
    private readonly Socket _socket;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public NodeIpcChannel(int fd)
    {
        _socket = new Socket(new SafeSocketHandle((IntPtr)fd, ownsHandle: true));
        _ = Task.Run(ReadAsync);
    }

    public Task Ready => _ready.Task;

    private async Task ReadAsync()
    {
        var buffer = new byte[4096];
        var pending = new StringBuilder();
        try
        {
            while (true)
            {
                var n = await _socket.ReceiveAsync(buffer, SocketFlags.None);
                if (n == 0) return;
                pending.Append(Encoding.UTF8.GetString(buffer, 0, n));
                string text;
                int newline;
                while ((newline = (text = pending.ToString()).IndexOf('\n')) >= 0)
                {
                    var message = text[..newline].Trim();
                    pending.Remove(0, newline + 1);
                    // 'ready' arrives as "ready"; PM2 also accepts {"type":"ready"}-like objects with a ready field.
                    if (message == "\"ready\"" || message.Contains("\"ready\"", StringComparison.Ordinal))
                        _ready.TrySetResult();
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public void Dispose() => _socket.Dispose();
}
