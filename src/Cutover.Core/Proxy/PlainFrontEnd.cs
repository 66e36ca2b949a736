using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

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
internal sealed class PlainFrontEnd(Listener listener, Socket listening, HandOverTransport kestrel) : FrontEnd<PlainConnection>(listener, listening, kestrel)
{
    /// <summary>Runs up to its first wait for the network on the accepting thread.</summary>
    protected override PlainConnection Accepted(Socket socket) => new(socket, this);
}

/// <summary>
/// One client connection of a plain listener: a pump receives straight into the pipe the fast path (or Kestrel) reads,
/// as Kestrel's socket transport would fill it (the pipe ends and <see cref="ConnectionClosed"/> fires when the client
/// leaves, also while nobody reads); responses go out through a writer straight on the socket, one send per flushed
/// segment, with no output pipe and send loop between.
/// </summary>
internal sealed class PlainConnection : ConnectionContext, IFrontEndConnection, IConnectionLifetimeNotificationFeature, IDuplexPipe
{
    private static readonly PipeOptions InputOptions = new(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false);
    /// <summary>Kestrel's socket transport receives into segments of its memory pool's block size.</summary>
    private const int ReceiveSize = 4096;
    private static long s_lastId;

    private readonly Socket _socket;
    private readonly PlainFrontEnd _frontEnd;
    private readonly Pipe _fromClient = new(InputOptions);
    private readonly PipeWriter _toClient;
    private readonly CancellationTokenSource _closed = new();
    private readonly CancellationTokenSource _closeRequested = new();
    private readonly TaskCompletionSource _kestrelDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _aborted;

    public PlainConnection(Socket socket, PlainFrontEnd frontEnd)
    {
        _socket = socket;
        _frontEnd = frontEnd;
        _toClient = PipeWriter.Create(new NetworkStream(socket, ownsSocket: false), new StreamPipeWriterOptions(leaveOpen: true));
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        ConnectionId = "plain-" + Interlocked.Increment(ref s_lastId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Features.Set<IConnectionLifetimeNotificationFeature>(this);
        ConnectionClosed = _closed.Token;
        ConnectionClosedRequested = _closeRequested.Token;
        Transport = this;
    }

    /// <summary>Completes when the connection is closed and forgotten.</summary>
    public Task Completion => _completion.Task;

    public override string ConnectionId { get; set; }
    public override IFeatureCollection Features { get; } = new FeatureCollection();
    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();
    public override IDuplexPipe Transport { get; set; }
    public override CancellationToken ConnectionClosed { get; set; }
    public override EndPoint? LocalEndPoint { get; set; }
    public override EndPoint? RemoteEndPoint { get; set; }
    public CancellationToken ConnectionClosedRequested { get; set; }

    PipeReader IDuplexPipe.Input => _fromClient.Reader;
    PipeWriter IDuplexPipe.Output => _toClient;

    public async Task RunAsync()
    {
        try
        {
            _socket.NoDelay = true;
            var pump = PumpAsync();
            await Http1.FastPathConnection.ServeAsync(this, HandOverAsync, _frontEnd.Listener);
            // Whoever served it is done. Shut down first and let the pump's pending receive see the end (on the socket
            // thread, by epoll): closing the socket under a pending receive would abort it, and .NET completes an
            // aborted receive through the thread pool, one hand-off per connection (measured on TlsFrontEnd).
            await _toClient.CompleteAsync();
            await _fromClient.Reader.CompleteAsync();
            try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { }
            await pump;
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            // A client gone mid-write: the connection closes, as Kestrel's would.
        }
        finally
        {
            _socket.Dispose();
            _closed.Dispose();
            _closeRequested.Dispose();
            _frontEnd.Closed(this);
            _completion.TrySetResult();
        }
    }

    /// <summary>Kestrel's HTTP pipeline serves the connection from here; completes when Kestrel has let go of it.</summary>
    private Task HandOverAsync(ConnectionContext connection) => _frontEnd.Kestrel.Hand(this) ? _kestrelDone.Task : Task.CompletedTask;

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
                var memory = _fromClient.Writer.GetMemory(ReceiveSize);
                var received = await _socket.ReceiveAsync(memory, SocketFlags.None);
                if (received == 0) break;
                _fromClient.Writer.Advance(received);
                if ((await _fromClient.Writer.FlushAsync()).IsCompleted) break;
            }
        }
        catch (Exception e)
        {
            error = Volatile.Read(ref _aborted) == 1 ? new ConnectionAbortedException("the connection was aborted", e) : new ConnectionResetException(e.Message, e);
        }
        await _fromClient.Writer.CompleteAsync(error);
        // As Kestrel's transport: the client is gone, whether or not anyone is reading.
        try { _closed.Cancel(); } catch (ObjectDisposedException) { }
    }

    public void RequestClose()
    {
        try { _closeRequested.Cancel(); } catch (ObjectDisposedException) { }
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        Volatile.Write(ref _aborted, 1);
        // Closing the socket ends the pump (the reader sees the abort) and any send in flight.
        _socket.Dispose();
    }

    /// <summary>Kestrel disposes the connection when its pipeline is done with it.</summary>
    public override ValueTask DisposeAsync()
    {
        _kestrelDone.TrySetResult();
        return ValueTask.CompletedTask;
    }
}
