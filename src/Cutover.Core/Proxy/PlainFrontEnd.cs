using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace Cutover.Proxy;

/// <summary>
/// A plain listener's connections, accepted here rather than by Kestrel's socket transport, as <see cref="TlsFrontEnd"/>
/// does for TLS: each connection starts on the thread that accepted it (with inline socket completions, the epoll
/// thread) and goes straight to Http1/'s fast path; Kestrel's HTTP pipeline gets the very same connection through
/// <see cref="HandOverTransport"/> when the fast path hands it over. Why: Kestrel's accept loop queues every accepted
/// connection to the thread pool, and its connection layer adds a transport pipe each way; under a burst of new
/// connections (a load balancer reconnecting, a client pool starting) that queue is where the proxy's p99 went, see
/// bench/README.md (proxy).
/// </summary>
internal sealed class PlainFrontEnd(Listener listener, Socket listening, HandOverTransport kestrel) : FrontEnd(listener, listening, kestrel)
{
    /// <summary>Runs up to its first wait for the network on the accepting thread.</summary>
    protected override FrontEndConnection Accepted(Platform.Epoll.SocketDescriptor socket, System.Net.IPEndPoint? peer, Platform.Epoll.EpollLoop loop) =>
        new PlainConnection(socket, peer, loop, this);
}

/// <summary>
/// One client connection of a plain listener: a pump receives straight into the pipe the fast path (or Kestrel) reads;
/// responses go out through a writer straight on the socket, one send per flushed segment, with no output pipe and
/// send loop between.
/// </summary>
internal sealed class PlainConnection : FrontEndConnection
{
    /// <summary>Kestrel's socket transport receives into segments of its memory pool's block size.</summary>
    private const int ReceiveSize = 4096;

    private readonly PlainFrontEnd _frontEnd;

    public PlainConnection(Platform.Epoll.SocketDescriptor socket, System.Net.IPEndPoint? peer, Platform.Epoll.EpollLoop loop, PlainFrontEnd frontEnd)
        : base(socket, peer, loop, frontEnd, "plain")
    {
        _frontEnd = frontEnd;
        ToClient = PipeWriter.Create(new Platform.Epoll.EpollSocketStream(Io), new StreamPipeWriterOptions(leaveOpen: true));
        Transport = this;
    }

    protected override PipeWriter ToClient { get; }

    public override async Task RunAsync()
    {
        try
        {
            var pump = PumpAsync();
            Enter(Stage.FastPath);
            await Http1.FastPathConnection.ServeAsync(this, HandOverAsync, _frontEnd.Listener);
            Enter(Stage.Closing);
            // Whoever served it is done. Shut down first and let the pump's pending receive see the end (on the socket
            // thread, by epoll): closing the socket under a pending receive would abort it, and .NET completes an
            // aborted receive through the thread pool, one hand-off per connection (measured on TlsFrontEnd).
            await ToClient.CompleteAsync();
            await FromClient.Reader.CompleteAsync();
            Io.Shutdown(SocketShutdown.Both);
            await pump;
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // A client gone mid-write: the connection closes, as Kestrel's would.
        }
        finally
        {
            Io.Dispose();
            Forget();
        }
    }

    /// <summary>Receives what the client sends into the pipe, until it closes (or the connection is aborted).</summary>
    private async Task PumpAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                // Straight into the pipe's memory rather than a zero-byte receive first to wait for data: one receive
                // syscall per request fewer, for a 4 KiB segment held while the connection waits (as the plain listener's
                // Kestrel was configured: WaitForDataBeforeAllocatingBuffer = false).
                var memory = FromClient.Writer.GetMemory(ReceiveSize);
                var received = await Io.ReceiveAsync(memory);
                if (received == 0) break;
                FromClient.Writer.Advance(received);
                if ((await FromClient.Writer.FlushAsync()).IsCompleted) break;
            }
        }
        catch (Exception e)
        {
            error = InputFailure(e);
        }
        await EndInputAsync(error);
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        MarkAborted();
        // Closing the socket ends the pump (the reader sees the abort) and any send in flight.
        Io.Dispose();
    }
}
