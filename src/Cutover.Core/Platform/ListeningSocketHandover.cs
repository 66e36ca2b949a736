using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Cutover.Platform;

/// <summary>Whether a handed-over listener serves plain HTTP or TLS (the new agent puts the certificates back on it).</summary>
public enum ListenerKind
{
    Plain,
    Tls,
}

/// <summary>One listener as the old agent describes it: where it is bound and what it serves.</summary>
public sealed record HandedListener(IPEndPoint Address, ListenerKind Kind);

/// <summary>A listener the new agent received: its description and the socket rebuilt from the descriptor (owned).</summary>
public sealed record ReceivedListener(HandedListener Listener, Socket Socket);

/// <summary>The handover could not be accepted (other version, a socket that is not what the old side says): nothing was taken over.</summary>
public sealed class HandoverException(string message) : IOException(message);

/// <summary>
/// The agent upgrade's listener handover (issue 12, Agent/AgentTakeover): the old agent sends every listening socket it
/// owns with its address and kind in one <see cref="FdPassing"/> message; the new agent rebuilds a
/// <see cref="Socket"/> from each descriptor and checks it listens on the stated address before it trusts it. The
/// old side keeps accepting until the new one does: the two descriptors share one accept queue, so a connection is
/// accepted by one of them and none is refused (unlike a second SO_REUSEPORT socket, whose own queue is reset when
/// it closes).
/// </summary>
public static class ListeningSocketHandover
{
    /// <summary>Bumped whenever the payload changes meaning; both agents must speak the same one.</summary>
    public const int ProtocolVersion = 1;

    public static async Task SendAsync(Socket channel, IReadOnlyList<(HandedListener Listener, Socket Socket)> listeners, CancellationToken cancellationToken)
        => await SendAsync(channel, ProtocolVersion, listeners, cancellationToken);

    /// <summary>With an explicit version: what an older or newer agent would send (the refusal is tested with it).</summary>
    internal static async Task SendAsync(Socket channel, int version, IReadOnlyList<(HandedListener Listener, Socket Socket)> listeners, CancellationToken cancellationToken)
    {
        var payload = new HandoverPayload(version, listeners.Select(l => new ListenerEntry(l.Listener.Address.ToString(), l.Listener.Kind)).ToList());
        var fds = listeners.Select(l => (int)l.Socket.SafeHandle.DangerousGetHandle()).ToList();
        await FdPassing.SendAsync(channel, JsonSerializer.SerializeToUtf8Bytes(payload, Json.Compact), fds, cancellationToken);
    }

    /// <summary>
    /// The listeners the old agent sent, each checked: listening (SO_ACCEPTCONN) and bound to the address it was
    /// described with. Any problem closes every descriptor received and throws <see cref="HandoverException"/>, so
    /// the caller either has them all or none.
    /// </summary>
    public static async Task<IReadOnlyList<ReceivedListener>> ReceiveAsync(Socket channel, CancellationToken cancellationToken)
    {
        var message = await FdPassing.ReceiveAsync(channel, cancellationToken);
        var sockets = new List<Socket>();
        try
        {
            var payload = Json.TryRead<HandoverPayload>(System.Text.Encoding.UTF8.GetString(message.Payload), out var problem)
                ?? throw new HandoverException($"the old agent's handover message cannot be read: {problem}");
            if (payload.Version != ProtocolVersion)
                throw new HandoverException($"the old agent speaks handover version {payload.Version}, this one {ProtocolVersion}: upgrade by restarting instead");
            if (payload.Listeners.Count != message.Descriptors.Length)
                throw new HandoverException($"the old agent described {payload.Listeners.Count} listeners but sent {message.Descriptors.Length} descriptors");
            var received = new List<ReceivedListener>();
            for (var i = 0; i < payload.Listeners.Count; i++)
            {
                var entry = payload.Listeners[i];
                var handle = new SafeSocketHandle(message.Descriptors[i], ownsHandle: true);
                Socket socket;
                try
                {
                    socket = new Socket(handle);
                }
                catch (SocketException e)
                {
                    handle.Dispose();
                    sockets.Add(null!); // counted as closed
                    throw new HandoverException($"listener {i + 1} ({entry.Address}): the descriptor sent for it is not a socket ({e.Message})");
                }
                sockets.Add(socket);
                if (!IPEndPoint.TryParse(entry.Address, out var address))
                    throw new HandoverException($"listener {i + 1}: '{entry.Address}' is not an address");
                if (socket.SocketType != SocketType.Stream || (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.AcceptConnection)! == 0)
                    throw new HandoverException($"listener {address}: the descriptor sent for it is not a listening TCP socket");
                if (!address.Equals(socket.LocalEndPoint as IPEndPoint))
                    throw new HandoverException($"listener {address}: the descriptor sent for it is bound to {socket.LocalEndPoint}");
                received.Add(new ReceivedListener(new HandedListener(address, entry.Kind), socket));
            }
            return received;
        }
        catch
        {
            foreach (var socket in sockets) socket?.Dispose();
            FdPassing.CloseAll(message.Descriptors.Skip(sockets.Count));
            throw;
        }
    }

    private sealed record HandoverPayload(int Version, List<ListenerEntry> Listeners);

    private sealed record ListenerEntry(string Address, ListenerKind Kind);
}
