using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;

namespace Cutover.Proxy;

/// <summary>
/// Kestrel's transport for a listener: it accepts nothing from the network, only the connections the listener's front
/// end hands it (<see cref="PlainFrontEnd"/>, <see cref="TlsFrontEnd"/> with TLS done: Kestrel's HTTP/2 and HTTP/1.1
/// see the ALPN result and https as with its own TLS). Registered as the listener's only IConnectionListenerFactory.
/// </summary>
internal sealed class HandOverTransport : IConnectionListenerFactory, IConnectionListener
{
    private readonly Channel<ConnectionContext> _handed = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions { SingleReader = true });

    public EndPoint EndPoint { get; private set; } = new IPEndPoint(IPAddress.Loopback, 0);

    /// <summary>False when Kestrel has stopped taking connections (the listener is stopping): the caller closes it.</summary>
    public bool Hand(ConnectionContext connection) => _handed.Writer.TryWrite(connection);

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        EndPoint = endpoint;
        return ValueTask.FromResult<IConnectionListener>(this);
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _handed.Reader.ReadAsync(cancellationToken);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _handed.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    public ValueTask DisposeAsync()
    {
        _handed.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }
}
