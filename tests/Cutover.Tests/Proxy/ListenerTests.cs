using System.Net;
using System.Net.Sockets;
using Cutover.Proxy;
using Microsoft.Extensions.Logging.Abstractions;
using Cutover.Tests.Support;

namespace Cutover.Tests.Proxy;

// Serial: the address-in-use test counts the process's descriptors, which other test classes running alongside open and close.
/// <summary>
/// The listener owns its listening socket (issue 12: what the agent upgrade hands over): it binds and listens itself,
/// accepts on it, and closes it when it stops.
/// </summary>
[Collection(Serial.Name)]
public class ListenerTests
{
    [Fact]
    public async Task The_listener_serves_on_the_socket_it_bound_and_stopping_it_closes_it()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var listener = await Listener.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), tls: false, NullLoggerFactory.Instance, challenges: null, timeout.Token);
        var socket = listener.ListeningSocket;
        var address = (IPEndPoint)socket.LocalEndPoint!;
        try
        {
            Assert.Equal(listener.Bound, address);
            Assert.Equal(1, (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.AcceptConnection)!);
            using var http = new HttpClient();
            using var answer = await http.GetAsync($"http://{address}/x", timeout.Token);
            Assert.Equal(HttpStatusCode.NotFound, answer.StatusCode); // the listener's own answer: no app routes here
            Assert.Contains("no app serves", await answer.Content.ReadAsStringAsync(timeout.Token));
        }
        finally
        {
            await listener.DisposeAsync();
        }

        // The listener closed its socket, so the port refuses now.
        Assert.True(socket.SafeHandle.IsClosed);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var refused = await Assert.ThrowsAsync<SocketException>(() => client.ConnectAsync(address, timeout.Token).AsTask());
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketErrorCode);
    }

    [Fact]
    public async Task An_address_in_use_is_one_clear_error_and_leaves_nothing_listening()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        holder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        holder.Listen();
        var address = (IPEndPoint)holder.LocalEndPoint!;
        var before = Directory.GetFiles("/proc/self/fd").Length;

        var e = await Assert.ThrowsAsync<DeployException>(() => Listener.StartAsync(address, tls: false, NullLoggerFactory.Instance, challenges: null, timeout.Token));

        Assert.Equal($"the proxy cannot listen on {address}: the address is already in use by another process", e.Message);
        Assert.True(Directory.GetFiles("/proc/self/fd").Length <= before, "the socket bound for the listener was not closed");
    }
}
