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
    // What only a hand-over to Kestrel or a listener stop asks for is made when asked (most connections never are): the
    // local address (a getsockname(2) each), the id string, Items, the two completions. Bench/README.md (TLS termination)
    // says what the eager ones cost per new connection.
    private readonly string _kind;
    private readonly long _number;
    private string? _connectionId;
    private EndPoint? _localEndPoint;
    private IDictionary<object, object?>? _items;
    private TaskCompletionSource? _kestrelDone;
    private TaskCompletionSource? _completion;
    /// <summary>1 once the connection is forgotten: a <see cref="Completion"/> asked for after that is complete.</summary>
    private int _forgotten;
    private int _aborted;
    /// <summary>Where the connection is (<see cref="Stage"/>), for <see cref="ToString"/>: a plain store at each step.</summary>
    private volatile Stage _stage;
    private volatile bool _inputEnded;

    /// <param name="kind">The connection id's prefix: "plain", "tls".</param>
    /// <param name="socket">The accepted descriptor (non-blocking), watched by <paramref name="loop"/> from here.</param>
    /// <param name="peer">The client's address, as accept(2) gave it.</param>
    protected FrontEndConnection(Platform.Epoll.SocketDescriptor socket, IPEndPoint? peer, Platform.Epoll.EpollLoop loop, FrontEnd owner, string kind)
    {
        _owner = owner;
        _kind = kind;
        _number = Interlocked.Increment(ref s_lastId);
        // The peer's address came with accept(2): no syscall.
        RemoteEndPoint = peer;
        Features.Set<IConnectionLifetimeNotificationFeature>(this);
        ConnectionClosed = _closed.Token;
        ConnectionClosedRequested = _closeRequested.Token;
        // Watched by the loop the front end chose (normally the one that accepted it), which runs it from its first wait on.
        Io = Platform.Epoll.EpollSocket.Accepted(socket, loop);
    }

    /// <summary>
    /// The client's socket, on the socket thread (<see cref="Platform.Epoll.EpollLoop"/>) that runs this connection: the
    /// fast path makes its upstream connections on the same one, so a whole exchange runs on one thread, as in an nginx worker.
    /// </summary>
    internal Platform.Epoll.EpollSocket Io { get; }


    /// <summary>What the client sent, for the fast path (or Kestrel) to read.</summary>
    protected Pipe FromClient { get; } = new(InputOptions);

    /// <summary>Where responses go (set once the connection can carry them).</summary>
    protected abstract PipeWriter ToClient { get; }

    /// <summary>True once <see cref="ConnectionContext.Abort(ConnectionAbortedException)"/> was called.</summary>
    protected bool Aborted => Volatile.Read(ref _aborted) == 1;

    /// <summary>Completes when the connection is closed and forgotten.</summary>
    public Task Completion
    {
        get
        {
            var completion = LazyTaskCompletionSource(ref _completion);
            // Forget sets the flag, then completes what it finds: one of the two sees the other (both are full fences).
            if (Volatile.Read(ref _forgotten) == 1) completion.TrySetResult();
            return completion.Task;
        }
    }

    public override string ConnectionId
    {
        get => _connectionId ??= _kind + "-" + _number.ToString(System.Globalization.CultureInfo.InvariantCulture);
        set => _connectionId = value;
    }

    public override IFeatureCollection Features { get; } = new FeatureCollection();
    public override IDictionary<object, object?> Items
    {
        get => _items ??= new Dictionary<object, object?>();
        set => _items = value;
    }

    public override IDuplexPipe Transport { get; set; } = null!;
    public override CancellationToken ConnectionClosed { get; set; }

    public override EndPoint? LocalEndPoint
    {
        get
        {
            if (_localEndPoint is not null) return _localEndPoint;
            return _localEndPoint = Io.LocalEndPoint();
        }
        set => _localEndPoint = value;
    }

    public override EndPoint? RemoteEndPoint { get; set; }
    public CancellationToken ConnectionClosedRequested { get; set; }

    PipeReader IDuplexPipe.Input => FromClient.Reader;
    PipeWriter IDuplexPipe.Output => ToClient;

    /// <summary>Serves the connection to its end; started on the thread that accepted it.</summary>
    public abstract Task RunAsync();

    /// <summary>The steps of <see cref="RunAsync"/>, as far as a connection that never closes needs telling apart.</summary>
    protected internal enum Stage : byte
    {
        Accepted,
        FastPath,
        Kestrel,
        Closing,
    }

    protected void Enter(Stage stage) => _stage = stage;

    /// <summary>Where the connection is: its id, its step, whether its input ended, its socket's state (what a test that waited in vain for it to close reports).</summary>
    public override string ToString() => $"{ConnectionId} {_stage} input {(_inputEnded ? "ended" : "open")} {Io}";

    /// <summary>Kestrel's HTTP pipeline serves the connection from here; completes when Kestrel has let go of it.</summary>
    protected Task HandOverAsync(ConnectionContext connection)
    {
        // Made before the hand-over: Kestrel may be done with the connection (DisposeAsync) before Hand returns.
        var kestrelDone = LazyTaskCompletionSource(ref _kestrelDone);
        Enter(Stage.Kestrel);
        return _owner.Kestrel.Hand(this) ? kestrelDone.Task : Task.CompletedTask;
    }

    private static TaskCompletionSource LazyTaskCompletionSource(ref TaskCompletionSource? field)
    {
        if (Volatile.Read(ref field) is { } made) return made;
        var created = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return Interlocked.CompareExchange(ref field, created, null) ?? created;
    }

    /// <summary>
    /// Called before the flush of a response after which the connection closes (the fast path's Connection: close): a TLS
    /// connection sends its close_notify in the same send, not in one of its own after it.
    /// </summary>
    public virtual void LastFlushFollows()
    {
    }

    protected void MarkAborted() => Interlocked.Exchange(ref _aborted, 1);

    /// <summary>What the pipe's reader is told when receiving failed: an abort if the connection was aborted, else a reset.</summary>
    protected Exception InputFailure(Exception e) =>
        Aborted ? new ConnectionAbortedException("the connection was aborted", e) : new ConnectionResetException(e.Message, e);

    /// <summary>The client's side is over: the pipe ends (with <paramref name="error"/>, if any) and, as with Kestrel's transport, the client is gone, whether or not anyone is reading.</summary>
    protected async Task EndInputAsync(Exception? error)
    {
        _inputEnded = true;
        await FromClient.Writer.CompleteAsync(error);
        try { _closed.Cancel(); } catch (ObjectDisposedException) { }
    }

    /// <summary>The last step of <see cref="RunAsync"/>, once the socket is closed: the front end forgets the connection.</summary>
    protected void Forget()
    {
        _closed.Dispose();
        _closeRequested.Dispose();
        _owner.Closed(this);
        Interlocked.Exchange(ref _forgotten, 1);
        Volatile.Read(ref _completion)?.TrySetResult();
    }

    /// <summary>Close once idle: at once when no request is in flight, else after its response.</summary>
    public void RequestClose()
    {
        try { _closeRequested.Cancel(); } catch (ObjectDisposedException) { }
    }

    /// <summary>Kestrel disposes the connection when its pipeline is done with it.</summary>
    public override ValueTask DisposeAsync()
    {
        Volatile.Read(ref _kestrelDone)?.TrySetResult();
        return ValueTask.CompletedTask;
    }
}
