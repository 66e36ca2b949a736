using System.Net.Sockets;
using System.Text;

namespace Cutover.Supervisor;

/// <summary>
/// A per-instance sd_notify socket (NOTIFY_SOCKET): a Unix datagram socket that understands READY=1,
/// STATUS=... and STOPPING=1, as systemd does for Type=notify services.
/// </summary>
public sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private NotifySocket(Socket socket, string path)
    {
        _socket = socket;
        Path = path;
        _ = Task.Run(ReadAsync);
    }

    public string Path { get; }
    public Task Ready => _ready.Task;
    public string? Status { get; private set; }
    public bool Stopping { get; private set; }

    public static NotifySocket Create(string path)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
        File.Delete(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(path));
        return new NotifySocket(socket, path);
    }

    private async Task ReadAsync()
    {
        var buffer = new byte[4096];
        try
        {
            while (true)
            {
                var n = await _socket.ReceiveAsync(buffer, SocketFlags.None);
                foreach (var line in Encoding.UTF8.GetString(buffer, 0, n).Split('\n', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (line == "READY=1") _ready.TrySetResult();
                    else if (line.StartsWith("STATUS=", StringComparison.Ordinal)) Status = line["STATUS=".Length..];
                    else if (line == "STOPPING=1") Stopping = true;
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        File.Delete(Path);
    }
}
