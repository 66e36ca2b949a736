using System.Net.Sockets;
using System.Text;

namespace Cutover.Probe;

/// <summary>How one probe request ended.</summary>
public enum ProbeOutcome { Ok, Refused, Reset, Timeout, Status5xx, OtherStatus }

/// <summary>
/// One keep-alive HTTP/1.1 connection, written by hand on purpose: HttpClient silently retries a request
/// whose reused connection the server closed, which would hide exactly the failure a deploy probe must see
/// (the keep-alive race of an nginx reload). A connection the server closed while idle is noticed before
/// sending and replaced, so ordinary keep-alive timeouts are not counted as failures.
/// </summary>
internal sealed class ProbeConnection(string host, int port) : IDisposable
{
    private Socket? _socket;
    private readonly byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;

    public async Task<(ProbeOutcome Outcome, int Status)> SendAsync(byte[] request, CancellationToken cancellationToken)
    {
        try
        {
            if (_socket is null || IdleClosed(_socket))
            {
                Close();
                _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await _socket.ConnectAsync(host, port, cancellationToken);
            }
            await _socket.SendAsync(request, SocketFlags.None, cancellationToken);
            var (status, keepAlive) = await ReadResponseAsync(_socket, cancellationToken);
            if (!keepAlive) Close();
            return (status >= 500 ? ProbeOutcome.Status5xx : status >= 400 || status < 200 ? ProbeOutcome.OtherStatus : ProbeOutcome.Ok, status);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
        {
            Close();
            return (ProbeOutcome.Refused, 0);
        }
        catch (OperationCanceledException)
        {
            Close();
            return (ProbeOutcome.Timeout, 0);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or FormatException)
        {
            Close();
            return (ProbeOutcome.Reset, 0);
        }
    }

    private static bool IdleClosed(Socket socket) => socket.Poll(0, SelectMode.SelectRead) && socket.Available == 0;

    private async Task<(int Status, bool KeepAlive)> ReadResponseAsync(Socket socket, CancellationToken cancellationToken)
    {
        var statusLine = await ReadLineAsync(socket, cancellationToken);
        var parts = statusLine.Split(' ', 3);
        if (parts.Length < 2 || !parts[0].StartsWith("HTTP/1.", StringComparison.Ordinal)) throw new FormatException("not an HTTP response");
        var status = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
        long length = -1;
        var chunked = false;
        var keepAlive = parts[0] == "HTTP/1.1";
        while (await ReadLineAsync(socket, cancellationToken) is { Length: > 0 } header)
        {
            var colon = header.IndexOf(':');
            if (colon < 0) continue;
            var name = header[..colon].Trim();
            var value = header[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) length = long.Parse(value, System.Globalization.CultureInfo.InvariantCulture);
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) && value.Contains("chunked", StringComparison.OrdinalIgnoreCase)) chunked = true;
            else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase)) keepAlive = !value.Contains("close", StringComparison.OrdinalIgnoreCase);
        }
        if (chunked)
        {
            while (true)
            {
                var size = Convert.ToInt64((await ReadLineAsync(socket, cancellationToken)).Split(';')[0].Trim(), 16);
                await SkipAsync(socket, size + 2, cancellationToken);
                if (size == 0) break;
            }
        }
        else if (length >= 0)
        {
            await SkipAsync(socket, length, cancellationToken);
        }
        else
        {
            keepAlive = false; // body until close; not worth reading for a probe
        }
        return (status, keepAlive);
    }

    private async Task<string> ReadLineAsync(Socket socket, CancellationToken cancellationToken)
    {
        var line = new StringBuilder();
        while (true)
        {
            if (_start == _end) await FillAsync(socket, cancellationToken);
            var index = Array.IndexOf(_buffer, (byte)'\n', _start, _end - _start);
            if (index < 0)
            {
                line.Append(Encoding.ASCII.GetString(_buffer, _start, _end - _start));
                _start = _end;
                continue;
            }
            line.Append(Encoding.ASCII.GetString(_buffer, _start, index - _start));
            _start = index + 1;
            return line.ToString().TrimEnd('\r');
        }
    }

    private async Task SkipAsync(Socket socket, long count, CancellationToken cancellationToken)
    {
        while (count > 0)
        {
            if (_start == _end) await FillAsync(socket, cancellationToken);
            var take = (int)Math.Min(count, _end - _start);
            _start += take;
            count -= take;
        }
    }

    private async Task FillAsync(Socket socket, CancellationToken cancellationToken)
    {
        var n = await socket.ReceiveAsync(_buffer.AsMemory(), SocketFlags.None, cancellationToken);
        if (n == 0) throw new IOException("the connection was closed before the response was complete");
        _start = 0;
        _end = n;
    }

    private void Close()
    {
        _socket?.Dispose();
        _socket = null;
        _start = _end = 0;
    }

    public void Dispose() => Close();
}
