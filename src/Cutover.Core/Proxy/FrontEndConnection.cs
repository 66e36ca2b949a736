using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Cutover.Proxy;

/// <summary>
/// One client connection a <see cref="FrontEnd"/> accepted, as Kestrel's pipeline sees a connection: a pipe the client's
/// bytes are pumped into (it ends, and <see cref="ConnectionClosed"/> fires, when the client leaves, also while nobody
/// reads, as with Kestrel's own transport), a writer back to the client, close on request, and the hand-over to Kestrel.
/// <see cref="PlainConnection"/> and <see cref="TlsConnection"/> add how bytes get in and out.
/// </summary>
internal abstract class FrontEndConnection : ConnectionContext, IConnectionLifetimeNotificationFeature, IDuplexPipe
{
    private static readonly PipeOptions InputOptions = new(readerScheduler: PipeScheduler.Inline, writerScheduler: PipeScheduler.Inline, useSynchronizationContext: false);
    private static long s_lastId;

    private readonly FrontEnd _owner;
    private readonly CancellationTokenSource _closed = new();
    private readonly CancellationTokenSource _closeRequested = new();
    private readonly TaskCompletionSource _kestrelDone = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _aborted;
    private int _socketEngine;
    private bool _socketPlaced;

    /// <param name="kind">The connection id's prefix: "plain", "tls".</param>
    protected FrontEndConnection(Socket socket, FrontEnd owner, string kind)
    {
        Socket = socket;
        _owner = owner;
        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        ConnectionId = kind + "-" + Interlocked.Increment(ref s_lastId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Features.Set<IConnectionLifetimeNotificationFeature>(this);
        ConnectionClosed = _closed.Token;
        ConnectionClosedRequested = _closeRequested.Token;
        _socketEngine = owner.NextSocketEngine();
    }

    /// <summary>
    /// The socket thread (engine index of <see cref="Platform.SocketEngines"/>) the client's socket is on, or meant for
    /// until it first waits; -1 when no threads are known. The fast path makes its upstream connections there.
    /// </summary>
    internal int SocketEngine => Volatile.Read(ref _socketEngine);

    /// <summary>Before an operation that may be the socket's first wait: the runtime is to put the socket on <see cref="SocketEngine"/>.</summary>
    protected void PinSocket()
    {
        if (!_socketPlaced) _owner.Listener.SocketEngines.Pin(_socketEngine);
    }

    /// <summary>
    /// After an operation that waited, on the thread that completed it (inline completions): that is the socket's thread
    /// now, which another registration may have made different from the one asked for.
    /// </summary>
    protected void SocketWaited()
    {
        if (_socketPlaced) return;
        _socketPlaced = true;
        var engine = _owner.Listener.SocketEngines.OfCurrentThread();
        if (engine >= 0) Volatile.Write(ref _socketEngine, engine);
    }

    protected Socket Socket { get; }

    /// <summary>What the client sent, for the fast path (or Kestrel) to read.</summary>
    protected Pipe FromClient { get; } = new(InputOptions);

    /// <summary>Where responses go (set once the connection can carry them).</summary>
    protected abstract PipeWriter ToClient { get; }

    /// <summary>True once <see cref="ConnectionContext.Abort(ConnectionAbortedException)"/> was called.</summary>
    protected bool Aborted => Volatile.Read(ref _aborted) == 1;

    /// <summary>Completes when the connection is closed and forgotten.</summary>
    public Task Completion => _completion.Task;

    public override string ConnectionId { get; set; }
    public override IFeatureCollection Features { get; } = new FeatureCollection();
    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();
    public override IDuplexPipe Transport { get; set; } = null!;
    public override CancellationToken ConnectionClosed { get; set; }
    public override EndPoint? LocalEndPoint { get; set; }
    public override EndPoint? RemoteEndPoint { get; set; }
    public CancellationToken ConnectionClosedRequested { get; set; }

    PipeReader IDuplexPipe.Input => FromClient.Reader;
    PipeWriter IDuplexPipe.Output => ToClient;

    /// <summary>Serves the connection to its end; started on the thread that accepted it.</summary>
    public abstract Task RunAsync();

    /// <summary>Kestrel's HTTP pipeline serves the connection from here; completes when Kestrel has let go of it.</summary>
    protected Task HandOverAsync(ConnectionContext connection) => _owner.Kestrel.Hand(this) ? _kestrelDone.Task : Task.CompletedTask;

    protected void MarkAborted() => Interlocked.Exchange(ref _aborted, 1);

    /// <summary>What the pipe's reader is told when receiving failed: an abort if the connection was aborted, else a reset.</summary>
    protected Exception InputFailure(Exception e) =>
        Aborted ? new ConnectionAbortedException("the connection was aborted", e) : new ConnectionResetException(e.Message, e);

    /// <summary>The client's side is over: the pipe ends (with <paramref name="error"/>, if any) and, as with Kestrel's transport, the client is gone, whether or not anyone is reading.</summary>
    protected async Task EndInputAsync(Exception? error)
    {
        await FromClient.Writer.CompleteAsync(error);
        try { _closed.Cancel(); } catch (ObjectDisposedException) { }
    }

    /// <summary>The last step of <see cref="RunAsync"/>, once the socket is closed: the front end forgets the connection.</summary>
    protected void Forget()
    {
        _closed.Dispose();
        _closeRequested.Dispose();
        _owner.Closed(this);
        _completion.TrySetResult();
    }

    /// <summary>Close once idle: at once when no request is in flight, else after its response.</summary>
    public void RequestClose()
    {
        try { _closeRequested.Cancel(); } catch (ObjectDisposedException) { }
    }

    /// <summary>Kestrel disposes the connection when its pipeline is done with it.</summary>
    public override ValueTask DisposeAsync()
    {
        _kestrelDone.TrySetResult();
        return ValueTask.CompletedTask;
    }
}
