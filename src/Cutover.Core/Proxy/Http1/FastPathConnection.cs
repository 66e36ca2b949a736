using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Cutover.Proxy.Http1;

/// <summary>
/// Cutover's own HTTP/1.1 forwarding for one client connection, started by the listener's front end (PlainFrontEnd;
/// TlsFrontEnd after TLS) in front of Kestrel's HTTP pipeline. It serves the common request itself: a strict parse of the head on the
/// connection's own pipe, the head written to a pooled upstream connection with the forwarded headers, a
/// Content-Length body streamed, the response head parsed and its body relayed by its framing. Anything else
/// (<see cref="RequestHeadParser"/>'s and <see cref="HandOverDecision"/>'s hand-overs) goes to Kestrel at a request
/// boundary: nothing of that request has been consumed from the pipe, so Kestrel's HTTP/1.1 connection parses it
/// and owns the connection from there on, through ProxyServer.HandleAsync and YARP as before.
/// </summary>
internal sealed class FastPathConnection
{
    /// <summary>Kestrel's KeepAliveTimeout default: how long an idle keep-alive connection may wait for its next request.</summary>
    public static readonly TimeSpan KeepAliveTimeout = TimeSpan.FromSeconds(130);
    /// <summary>Kestrel's RequestHeadersTimeout default: a head must be complete this soon after its first byte (slowloris).</summary>
    public static readonly TimeSpan RequestHeadersTimeout = TimeSpan.FromSeconds(30);
    /// <summary>A body this small that arrived with its head goes upstream in the head's write (and can be replayed).</summary>
    private const int CoalescedBodyLimit = 16 * 1024;
    private const int HeadLimit = (int)Config.ProxyConfig.HeaderLimitCeiling;
    /// <summary>The request body to stream is chunked: it runs to its last chunk, checked as it passes.</summary>
    private const long ChunkedBody = -1;

    private static ReadOnlySpan<byte> Crlf => "\r\n"u8;
    /// <summary>ForwardedHeaders.Hsts as bytes, encoded once rather than on every response.</summary>
    private static readonly byte[] HstsValue = Encoding.ASCII.GetBytes(ForwardedHeaders.Hsts);

    private readonly ConnectionContext _context;
    /// <summary>The front end's connection (always, but for a test's own context): told before a connection's last flush.</summary>
    private readonly FrontEndConnection? _frontEnd;
    private readonly ConnectionDelegate _next;
    private readonly Listener _listener;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    /// <summary>The parsers and buffers, the listener's pool's (<see cref="FastPathBuffers"/>), given back when the connection ends.</summary>
    private readonly FastPathBuffers _buffers;
    private readonly int _lease;
    private readonly RequestHead _head;
    private readonly ResponseHead _response;
    private readonly ChunkedBodyValidator _chunked;
    private readonly IPAddress? _peer;
    private readonly IPAddress? _peerAsSeen;
    private readonly byte[] _peerText;
    /// <summary>Keep-alive idleness, then a head's arrival (slowloris): reset per request, so lazily (one write, no timer change).</summary>
    private readonly Platform.LazyDeadline _clientTimer;
    /// <summary>response_timeout per exchange: the deadline lazily, its token from <see cref="_responseDeadline"/> (a new one after it fired).</summary>
    private readonly Platform.LazyDeadline _responseTimer;
    private CancellationTokenSource _responseDeadline = new();
    private CancellationTokenRegistration _closeRequestedRegistration;
    private CancellationTokenRegistration _closedRegistration;
    /// <summary>The head being parsed when it spans pipe segments, and the upstream request head being built (from <see cref="_buffers"/>, grown here).</summary>
    private byte[] _headCopy;
    private byte[] _upstreamHead;
    /// <summary>The last Host value and the host name routing uses for it (most connections name one host; kept with the buffers).</summary>
    private byte[] _lastPath;
    private string _lastPathText;
    private byte[] _lastHost;
    private string _lastHostName;
    private UpstreamConnection? _upstream;
    /// <summary>Bytes of the current exchange's response received so far: none means the instance never answered (retriable).</summary>
    private int _responseBytes;
    /// <summary>Requests this connection forwarded itself (the listener's count, added once at the end).</summary>
    private long _requests;
    private volatile bool _idle;
    private volatile bool _closeRequested;
    private volatile bool _timedOut;
    private volatile bool _clientGone;
    /// <summary>
    /// activity_timeout's watch over a body in flight (either way): when no byte moved for that long, both connections
    /// are cut. Armed when a body starts to stream, postponed on every read and write (a plain store, no timer call),
    /// disarmed when it ends.
    /// </summary>
    private readonly Platform.LazyDeadline _activity;
    private TimeSpan _activityTimeout;
    private volatile bool _stalled;
    /// <summary>The last exchange's response was read on another socket thread than the client connection's.</summary>
    private bool _crossedThreads;

    private FastPathConnection(ConnectionContext context, ConnectionDelegate next, Listener listener)
    {
        _context = context;
        _frontEnd = context as FrontEndConnection;
        _next = next;
        _listener = listener;
        _input = context.Transport.Input;
        _output = context.Transport.Output;
        _peerAsSeen = (context.RemoteEndPoint as IPEndPoint)?.Address;
        _peer = _peerAsSeen is { IsIPv4MappedToIPv6: true } mapped ? mapped.MapToIPv4() : _peerAsSeen;
        // Written as bytes straight away (no string between): every request's X-Forwarded-For carries it.
        Span<byte> peerText = stackalloc byte[64];
        _peerText = _peer is not null && _peer.TryFormat(peerText, out var peerLength) ? peerText[..peerLength].ToArray() : [];
        _clientTimer = new Platform.LazyDeadline(static state => ((FastPathConnection)state!).OnClientTimer(), this);
        _responseTimer = new Platform.LazyDeadline(static state => ((FastPathConnection)state!).OnResponseTimer(), this);
        _activity = new Platform.LazyDeadline(static state => ((FastPathConnection)state!).OnStalled(), this);
        _buffers = listener.FastPathBuffers.Rent();
        _lease = _buffers.Lease;
        _head = _buffers.Head;
        _response = _buffers.Response;
        _chunked = _buffers.Chunked;
        _headCopy = _buffers.HeadCopy;
        _upstreamHead = _buffers.UpstreamHead;
        _lastPath = _buffers.LastPath;
        _lastPathText = _buffers.LastPathText;
        _lastHost = _buffers.LastHost;
        _lastHostName = _buffers.LastHostName;
    }

    /// <summary>The buffers back to the listener's pool, with what this connection grew or cached in them.</summary>
    private void ReturnBuffers()
    {
        _buffers.HeadCopy = _headCopy;
        _buffers.UpstreamHead = _upstreamHead;
        _buffers.LastPath = _lastPath;
        _buffers.LastPathText = _lastPathText;
        _buffers.LastHost = _lastHost;
        _buffers.LastHostName = _lastHostName;
        _listener.FastPathBuffers.Return(_buffers, _lease);
    }

    /// <summary>The connection middleware: HTTP/2 (ALPN h2) goes straight to Kestrel, HTTP/1.1 starts here.</summary>
    public static Task ServeAsync(ConnectionContext context, ConnectionDelegate next, Listener listener)
    {
        if (listener.IsTls && context.Features.Get<Microsoft.AspNetCore.Server.Kestrel.Core.Features.ITlsApplicationProtocolFeature>() is { } alpn && alpn.ApplicationProtocol.Span.SequenceEqual("h2"u8))
            return next(context);
        return new FastPathConnection(context, next, listener).RunAsync();
    }

    private enum Next
    {
        Continue,
        Close,
        HandOver,
    }

    private async Task RunAsync()
    {
        var handedOver = false;
        try
        {
            // Registered once per connection, not per request: a listener stop interrupts a pending read.
            if (_context.Features.Get<IConnectionLifetimeNotificationFeature>() is { } lifetime)
                _closeRequestedRegistration = lifetime.ConnectionClosedRequested.Register(static state => ((FastPathConnection)state!).OnCloseRequested(), this);
            _closedRegistration = _context.ConnectionClosed.Register(static state => ((FastPathConnection)state!).OnClientGone(), this);
            while (true)
            {
                var next = await ServeOneAsync();
                if (next == Next.Continue) continue;
                if (next == Next.HandOver)
                {
                    // Nothing of ours may touch the pipe once Kestrel reads it.
                    ReleaseConnectionHooks();
                    handedOver = true;
                    _listener.CountHandOver();
                    await _next(_context);
                }
                return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ConnectionResetException or ObjectDisposedException or OperationCanceledException && !handedOver)
        {
            // The client or the instance went away mid-exchange: the connection closes, as Kestrel's would.
        }
        finally
        {
            ReleaseConnectionHooks();
            _activity.Dispose();
            if (_requests > 0) _listener.CountFastPath(_requests);
            Interlocked.Exchange(ref _upstream, null)?.Dispose();
            _responseTimer.Dispose();
            _responseDeadline.Dispose();
            // Last: nothing of this connection reads or writes them after here.
            ReturnBuffers();
        }
    }

    private void ReleaseConnectionHooks()
    {
        _closeRequestedRegistration.Dispose();
        _closedRegistration.Dispose();
        _clientTimer.Dispose();
    }

    private void OnClientTimer()
    {
        _timedOut = true;
        _input.CancelPendingRead();
    }

    private void OnResponseTimer()
    {
        try
        {
            _responseDeadline.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the connection ended meanwhile
        }
    }

    /// <summary>The listener is stopping: an idle connection closes now, a busy one after its response.</summary>
    private void OnCloseRequested()
    {
        _closeRequested = true;
        if (_idle) _input.CancelPendingRead();
    }

    private void OnClientGone()
    {
        _clientGone = true;
        Interlocked.Exchange(ref _upstream, null)?.Dispose();
    }

    /// <summary>From here a body moves: cut both sides once no byte has moved for activity_timeout.</summary>
    private void WatchActivity() => _activity.Arm(_activityTimeout);

    private void StopWatchingActivity() => _activity.Disarm();

    private void Moved() => _activity.Postpone(_activityTimeout);

    private void OnStalled()
    {
        // Mid-body there is nothing to answer: the client sees its connection cut, the instance's is closed, never pooled.
        _stalled = true;
        Interlocked.Exchange(ref _upstream, null)?.Dispose();
        _context.Abort(new ConnectionAbortedException($"no byte of the body moved for {Config.Duration.Format(_activityTimeout)} (activity_timeout)"));
    }

    /// <summary>One request: read and parse its head, then hand over, refuse or forward it.</summary>
    [AsyncMethodBuilder(typeof(Platform.DeepPoolingValueTaskMethodBuilder<>))]
    private async ValueTask<Next> ServeOneAsync()
    {
        _clientTimer.Arm(KeepAliveTimeout);
        _idle = true;
        var headStarted = false;
        ReadOnlySequence<byte> buffer;
        ReadOnlySpan<byte> head;
        while (true)
        {
            if (_closeRequested && _idle) return Next.Close;
            var result = await _input.ReadAsync();
            buffer = result.Buffer;
            if (result.IsCanceled)
            {
                _input.AdvanceTo(buffer.Start);
                if (_timedOut || _closeRequested) return Next.Close;
                continue;
            }
            if (buffer.IsEmpty)
            {
                _input.AdvanceTo(buffer.Start);
                if (result.IsCompleted) return Next.Close;
                continue;
            }
            _idle = false;
            // Most heads lie in the pipe's first segment; only one that does not is copied out, and only as far as needed.
            head = buffer.FirstSpan;
            var parse = _head.Parse(head, HeadLimit);
            if (parse == RequestParse.Incomplete && !buffer.IsSingleSegment)
            {
                head = Contiguous(buffer, 16 * 1024);
                parse = _head.Parse(head, HeadLimit);
                if (parse == RequestParse.Incomplete && buffer.Length > head.Length)
                {
                    head = Contiguous(buffer, HeadLimit + 1);
                    parse = _head.Parse(head, HeadLimit);
                }
            }
            if (parse == RequestParse.Complete) break;
            if (parse == RequestParse.HandOver)
            {
                // Unread, unexamined: Kestrel's first read returns this very request.
                _input.AdvanceTo(buffer.Start, buffer.Start);
                return Next.HandOver;
            }
            if (parse == RequestParse.Malformed)
            {
                _input.AdvanceTo(buffer.End);
                await AnswerAsync(400, "Bad Request", null, "", close: true);
                return Next.Close;
            }
            if (result.IsCompleted)
            {
                _input.AdvanceTo(buffer.End);
                return Next.Close; // a partial head, then the client's end
            }
            if (!headStarted)
            {
                // Only a head that did not come whole needs the clock (most arrive in one read).
                headStarted = true;
                _clientTimer.Arm(RequestHeadersTimeout);
            }
            _input.AdvanceTo(buffer.Start, buffer.End);
        }
        _clientTimer.Disarm();
        var started = Stopwatch.GetTimestamp();

        var target = _head.Target(head);
        var query = target.IndexOf((byte)'?');
        var path = PathText(query >= 0 ? target[..query] : target);
        var route = _listener.Routes.Match(HostName(_head.Value(head, _head.Fields[_head.HostField])), path);
        var app = route?.App;
        if (HandOverDecision.Check(_head, path, app, _listener.IsTls, _listener.AnswersChallenges) is not null)
        {
            _input.AdvanceTo(buffer.Start, buffer.Start);
            return Next.HandOver;
        }

        var method = MethodText(_head.Method(head));
        var pathAndQuery = app!.AccessLog is null ? null : Encoding.ASCII.GetString(target);
        var settings = app.Settings;
        var trusted = ForwardedHeaders.IsTrusted(_peer, settings.TrustedProxies);
        var headLength = BuildUpstreamHead(head, trusted);
        var contentLength = Math.Max(_head.ContentLength, 0);
        var bodyBuffered = buffer.Length - _head.Length;
        long bodyToStream = _head.Chunked ? ChunkedBody : contentLength;
        long coalesced = 0;
        if (contentLength > 0 && contentLength <= CoalescedBodyLimit && bodyBuffered >= contentLength)
        {
            // The whole small body is here: it goes with the head in one write, and can be sent again on a retry.
            EnsureUpstreamHead(headLength + (int)contentLength);
            buffer.Slice(_head.Length, contentLength).CopyTo(_upstreamHead.AsSpan(headLength));
            headLength += (int)contentLength;
            coalesced = contentLength;
            bodyToStream = 0;
        }
        var clientWantsClose = _head.ConnectionClose;
        var isHead = method == "HEAD";
        var hsts = _listener.IsTls && settings.Tls is { Hsts: true };
        _activityTimeout = settings.ActivityTimeout;
        _input.AdvanceTo(buffer.GetPosition(_head.Length + coalesced));

        _requests++;
        var (status, keepClient) = await ForwardAsync(app, method, isHead, headLength, bodyToStream, _head.HasBody, clientWantsClose, hsts);
        app.Metrics?.Record(status, started);
        app.LogAccess(_peerAsSeen, method, pathAndQuery ?? "", "HTTP/1.1", status, started);
        return keepClient && !clientWantsClose && !_closeRequested ? Next.Continue : Next.Close;
    }

    /// <summary>The first <paramref name="limit"/> bytes of the pipe as one span, copied.</summary>
    private ReadOnlySpan<byte> Contiguous(ReadOnlySequence<byte> buffer, int limit)
    {
        var length = (int)Math.Min(buffer.Length, limit);
        if (_headCopy.Length < length) _headCopy = new byte[Math.Max(length, 8192)];
        buffer.Slice(0, length).CopyTo(_headCopy);
        return _headCopy.AsSpan(0, length);
    }

    /// <summary>The host routing uses: without the port, lower case, no trailing dot (Listener.NormalizeHost).</summary>
    private string HostName(ReadOnlySpan<byte> host)
    {
        if (host.SequenceEqual(_lastHost)) return _lastHostName;
        var colon = host.IndexOf((byte)':');
        _lastHostName = Listener.NormalizeHost(Encoding.ASCII.GetString(colon >= 0 ? host[..colon] : host));
        _lastHost = host.ToArray();
        return _lastHostName;
    }

    /// <summary>The path as routing reads it; a connection asking for the same path again (polling, health checks, keep-alive clients) reuses the string.</summary>
    private string PathText(ReadOnlySpan<byte> path)
    {
        if (path.SequenceEqual(_lastPath)) return _lastPathText;
        _lastPathText = Encoding.ASCII.GetString(path);
        _lastPath = path.ToArray();
        return _lastPathText;
    }

    private static string MethodText(ReadOnlySpan<byte> method) => method switch
    {
        _ when method.SequenceEqual("GET"u8) => "GET",
        _ when method.SequenceEqual("POST"u8) => "POST",
        _ when method.SequenceEqual("HEAD"u8) => "HEAD",
        _ when method.SequenceEqual("PUT"u8) => "PUT",
        _ when method.SequenceEqual("DELETE"u8) => "DELETE",
        _ when method.SequenceEqual("PATCH"u8) => "PATCH",
        _ when method.SequenceEqual("OPTIONS"u8) => "OPTIONS",
        _ => Encoding.ASCII.GetString(method),
    };

    private void EnsureUpstreamHead(int length)
    {
        if (_upstreamHead.Length >= length) return;
        var larger = new byte[Math.Max(length, _upstreamHead.Length * 2)];
        _upstreamHead.CopyTo(larger, 0);
        _upstreamHead = larger;
    }

    /// <summary>
    /// The request head as the instance gets it (ForwardedHeaders' rules): the request line and fields as received,
    /// without hop-by-hop fields (Connection and the names it lists, Keep-Alive, Proxy-Connection, TE, Trailer), Host
    /// unchanged, X-Forwarded-For/-Proto/-Host set from the peer (believed from trusted peers), Forwarded and
    /// X-Forwarded-Prefix only from trusted peers.
    /// </summary>
    private int BuildUpstreamHead(ReadOnlySpan<byte> head, bool trusted)
    {
        var fields = _head.Fields.AsSpan(0, _head.FieldCount);
        string? incomingFor = null;
        ReadOnlySpan<byte> lastProto = default, lastHost = default;
        var hasConnectionList = false;
        foreach (ref readonly var field in fields)
        {
            if (field.Kind == FieldKind.Connection) hasConnectionList = true;
            if (!trusted || field.ValueLength == 0) continue;
            var value = _head.Value(head, field);
            if (field.Kind == FieldKind.XForwardedFor) incomingFor = incomingFor is null ? Encoding.Latin1.GetString(value) : $"{incomingFor}, {Encoding.Latin1.GetString(value)}";
            else if (field.Kind == FieldKind.XForwardedProto) lastProto = value;
            else if (field.Kind == FieldKind.XForwardedHost) lastHost = value;
        }
        var forwardedFor = incomingFor is null ? _peerText : Encoding.Latin1.GetBytes(ForwardedHeaders.ForwardedFor(incomingFor, Encoding.ASCII.GetString(_peerText)));
        var scheme = _listener.IsTls ? "https"
            : (lastProto.IsEmpty ? null : ForwardedHeaders.TrustedScheme(Encoding.Latin1.GetString(HttpSyntax.LastListElement(lastProto)))) ?? "http";
        var host = HttpSyntax.LastListElement(lastHost);
        if (host.IsEmpty) host = _head.Value(head, _head.Fields[_head.HostField]);

        EnsureUpstreamHead(head.Length + forwardedFor.Length + host.Length + 128);
        var output = _upstreamHead.AsSpan();
        var requestLine = head.IndexOf((byte)'\n') + 1;
        head[..requestLine].CopyTo(output);
        var written = requestLine;
        foreach (ref readonly var field in fields)
        {
            switch (field.Kind)
            {
                case FieldKind.Connection or FieldKind.HopByHop or FieldKind.XForwardedFor or FieldKind.XForwardedProto or FieldKind.XForwardedHost:
                case FieldKind.TransferEncoding: // written below in one spelling
                    continue;
                case FieldKind.TrustedOnly when !trusted:
                    continue;
                case FieldKind.Other when hasConnectionList && ListedInConnection(head, _head.Fields.AsSpan(0, _head.FieldCount), _head.Name(head, field)):
                    continue;
            }
            written += AppendLine(output[written..], head[field.NameStart..(field.ValueStart + field.ValueLength)]);
        }
        if (_head.Chunked) written += Append(output[written..], "Transfer-Encoding: "u8, "chunked"u8);
        written += Append(output[written..], "X-Forwarded-For: "u8, forwardedFor);
        written += Append(output[written..], "X-Forwarded-Proto: "u8, scheme == "https" ? "https"u8 : "http"u8);
        written += Append(output[written..], "X-Forwarded-Host: "u8, host);
        Crlf.CopyTo(output[written..]);
        return written + 2;
    }

    private static bool ListedInConnection(ReadOnlySpan<byte> head, ReadOnlySpan<HeaderField> fields, ReadOnlySpan<byte> name)
    {
        foreach (ref readonly var field in fields)
            if (field.Kind == FieldKind.Connection && HttpSyntax.ListContains(head.Slice(field.ValueStart, field.ValueLength), name)) return true;
        return false;
    }

    /// <summary>A header line as it arrived (name, colon, value), then CRLF; returns the bytes written.</summary>
    private static int AppendLine(Span<byte> output, ReadOnlySpan<byte> line)
    {
        line.CopyTo(output);
        Crlf.CopyTo(output[line.Length..]);
        return line.Length + 2;
    }

    private static int Append(Span<byte> output, ReadOnlySpan<byte> name, ReadOnlySpan<byte> value)
    {
        name.CopyTo(output);
        value.CopyTo(output[name.Length..]);
        Crlf.CopyTo(output[(name.Length + value.Length)..]);
        return name.Length + value.Length + 2;
    }

    /// <summary>
    /// ProxyServer.ForwardAsync's rules on this path: pick an instance, count it in flight (drain waits for it), one
    /// retry on another instance when nothing was sent or the request is idempotent without a body, 503 when none is
    /// ready, 504 at response_timeout, 502 when the instance failed or answered garbage. Returns the status the
    /// client got (499 when it left first) and whether its connection may carry another request.
    /// </summary>
    [AsyncMethodBuilder(typeof(Platform.DeepPoolingValueTaskMethodBuilder<>))]
    private async ValueTask<(int Status, bool KeepClient)> ForwardAsync(ProxyServer app, string method, bool isHead, int headLength, long bodyToStream, bool hasBody, bool clientWantsClose, bool hsts)
    {
        Backend? first = null;
        for (var attempt = 0; attempt < 2; attempt++)
        {
            var backend = app.Pool.Pick(exclude: first);
            if (backend is null || backend == first)
            {
                app.CountFailed();
                var close = bodyToStream != 0 || clientWantsClose;
                await AnswerAsync(503, "Service Unavailable", "Retry-After: " + ForwardingRules.NoReadyInstanceRetryAfter, ForwardingRules.NoReadyInstance, close);
                return (503, !close);
            }
            backend.Enter();
            Exchange exchange;
            try
            {
                exchange = await ExchangeAsync(backend, isHead, headLength, bodyToStream, app.Settings.ResponseTimeout, clientWantsClose, hsts);
            }
            finally
            {
                backend.Leave();
            }
            switch (exchange.Outcome)
            {
                case Outcome.Relayed:
                    if (_crossedThreads) app.Metrics?.CrossedSocketThreads();
                    app.CountServed();
                    backend.Count(error: exchange.Status >= 500);
                    return (exchange.Status, exchange.KeepClient);
                case Outcome.BrokenAfterHead:
                    // The client has the head already: nothing to answer, the connection closes.
                    backend.Count(error: true);
                    app.CountFailed();
                    return (exchange.Status, false);
                case Outcome.ClientGone:
                    return (499, false);
                case Outcome.BadRequestBody:
                    // The instance got a body cut short on a connection now closed, never a byte past the fault; nothing of
                    // its answer reached the client, which gets the 400 Kestrel's path gives, and the connection closes.
                    await AnswerAsync(400, "Bad Request", null, "", close: true);
                    return (400, false);
                case Outcome.RequestBodyStalled:
                    // Both connections are cut already; 408 is for the access log, as nginx logs client_body_timeout.
                    return (408, false);
                case Outcome.TimedOut:
                    app.CountTimedOut();
                    app.CountFailed();
                    backend.Count(error: true);
                    await AnswerAsync(504, "Gateway Timeout", null, ForwardingRules.TimedOut(app.Settings.ResponseTimeout), close: exchange.BodyUnread || clientWantsClose);
                    return (504, !exchange.BodyUnread && !clientWantsClose);
                case Outcome.BadResponse:
                    backend.Count(error: true);
                    app.CountFailed();
                    await AnswerAsync(502, "Bad Gateway", null, "", close: exchange.BodyUnread || clientWantsClose);
                    return (502, !exchange.BodyUnread && !clientWantsClose);
                default: // Failed before any response byte
                    backend.Count(error: true);
                    // A body partly streamed to the failed instance is gone from the pipe: never retried.
                    if (attempt == 0 && ForwardingRules.MayRetry(exchange.NothingSent, method, hasBody) && (bodyToStream == 0 || exchange.NothingSent))
                    {
                        first = backend;
                        app.Metrics?.Retried();
                        continue;
                    }
                    app.CountFailed();
                    await AnswerAsync(502, "Bad Gateway", null, "", close: exchange.BodyUnread || clientWantsClose);
                    return (502, !exchange.BodyUnread && !clientWantsClose);
            }
        }
        throw new UnreachableException();
    }

    private enum Outcome
    {
        Relayed,
        Failed,
        TimedOut,
        BadResponse,
        BrokenAfterHead,
        ClientGone,
        /// <summary>The streamed request body stopped moving for activity_timeout: both connections were cut.</summary>
        RequestBodyStalled,
        /// <summary>The chunked request body broke its framing: what came before went upstream, that connection is closed.</summary>
        BadRequestBody,
    }

    /// <param name="NothingSent">The connection could not be made: not a byte of the request reached the instance.</param>
    /// <param name="BodyUnread">Part of the client's body is still in its pipe: its connection cannot carry another request.</param>
    private readonly record struct Exchange(Outcome Outcome, int Status = 0, bool KeepClient = false, bool NothingSent = false, bool BodyUnread = false);

    /// <summary>One try on one instance: the request out, the response back to the client.</summary>
    [AsyncMethodBuilder(typeof(Platform.DeepPoolingValueTaskMethodBuilder<>))]
    private async ValueTask<Exchange> ExchangeAsync(Backend backend, bool isHead, int headLength, long bodyToStream, TimeSpan responseTimeout, bool clientWantsClose, bool hsts)
    {
        var replayable = bodyToStream == 0;
        if (_responseDeadline.IsCancellationRequested)
        {
            _responseDeadline.Dispose();
            _responseDeadline = new CancellationTokenSource();
        }
        var deadline = _responseDeadline.Token;
        _responseTimer.Arm(responseTimeout);
        var pool = backend.Upstream;
        // The client connection's socket thread: an upstream connection there keeps the whole exchange on one thread.
        var loop = _frontEnd?.Io.Loop ?? _listener.Loops.Current ?? _listener.Loops.Next();
        var connection = pool.TryRent(loop);
        // A body streamed from the client cannot be sent twice: make sure the idle connection is still open first.
        while (connection is not null && !replayable && connection.LooksClosed())
        {
            connection.Dispose();
            connection = pool.TryRent(loop);
        }
        try
        {
            for (var freshTry = 0; ; freshTry++)
            {
                if (connection is null)
                {
                    try
                    {
                        connection = await pool.ConnectAsync(loop, deadline);
                    }
                    catch (OperationCanceledException) when (deadline.IsCancellationRequested)
                    {
                        return new Exchange(Outcome.TimedOut, BodyUnread: bodyToStream != 0);
                    }
                    catch (SocketException)
                    {
                        return new Exchange(Outcome.Failed, NothingSent: true, BodyUnread: bodyToStream != 0);
                    }
                }
                // A full fence (not a volatile write): OnClientGone sets the flag then takes _upstream, we publish then read the flag.
                Interlocked.Exchange(ref _upstream, connection);
                if (_clientGone) return new Exchange(Outcome.ClientGone);
                _responseBytes = 0;
                int received;
                try
                {
                    await connection.Io.SendAsync(_upstreamHead.AsMemory(0, headLength), deadline);
                    if (bodyToStream != 0 && await StreamRequestBodyAsync(connection, bodyToStream, deadline) is var body and not RequestBody.Sent)
                        return _stalled ? new Exchange(Outcome.RequestBodyStalled)
                            : body == RequestBody.Invalid ? new Exchange(Outcome.BadRequestBody) : new Exchange(Outcome.ClientGone);
                    bodyToStream = 0;
                    (var parse, received) = await ReadResponseHeadAsync(connection, isHead, deadline);
                    if (parse == ResponseParse.Malformed) return new Exchange(Outcome.BadResponse);
                    if (parse == ResponseParse.Incomplete) throw new IOException("the instance closed the connection before a complete response head");
                }
                catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException)
                {
                    connection.Dispose();
                    // Before the response head only a streamed request body is watched: it stopped coming.
                    if (_stalled) return new Exchange(Outcome.RequestBodyStalled);
                    if (_clientGone) return new Exchange(Outcome.ClientGone);
                    if (deadline.IsCancellationRequested) return new Exchange(Outcome.TimedOut, BodyUnread: bodyToStream != 0);
                    // An idle connection the instance closed as we reused it: once more on a fresh one, when the request can be sent again.
                    var reused = connection.Reused;
                    connection = null;
                    if (reused && replayable && _responseBytes == 0 && freshTry == 0) continue;
                    return new Exchange(Outcome.Failed, BodyUnread: bodyToStream != 0);
                }
                _responseTimer.Disarm();
                if (deadline.IsCancellationRequested)
                {
                    connection.Dispose();
                    connection = null;
                    return new Exchange(Outcome.TimedOut);
                }
                // Read on another socket thread than the client's: this exchange woke a second thread (counted, for the
                // placement of upstream connections to be checked in production, not only in a benchmark).
                _crossedThreads = connection.Io.Loop != loop;
                var relayed = await RelayResponseAsync(connection, received, clientWantsClose, hsts);
                if (relayed.Outcome == Outcome.Relayed && relayed.UpstreamReusable && Interlocked.CompareExchange(ref _upstream, null, connection) == connection)
                    pool.Return(connection);
                else
                    connection.Dispose();
                connection = null;
                return relayed.Exchange;
            }
        }
        finally
        {
            Interlocked.CompareExchange(ref _upstream, null, connection);
            connection?.Dispose();
        }
    }

    /// <summary>
    /// Copies a Content-Length (or chunked) body from the client's pipe to the instance, segment by segment; ClientGone
    /// when the client left first. Bounded by response_timeout, as the YARP path's upload is (a client that sends slowly but steadily
    /// gets its 504 and the connection closes), and by activity_timeout: a body that stops moving cuts both sides.
    /// </summary>
    [AsyncMethodBuilder(typeof(Platform.DeepPoolingValueTaskMethodBuilder<>))]
    private async ValueTask<RequestBody> StreamRequestBodyAsync(UpstreamConnection connection, long remaining, CancellationToken deadline)
    {
        WatchActivity();
        try
        {
            if (remaining == ChunkedBody) return await StreamChunkedRequestBodyAsync(connection, deadline);
            while (remaining > 0)
            {
                var result = await _input.ReadAsync(deadline);
                Moved();
                var buffer = result.Buffer;
                if (buffer.IsEmpty && result.IsCompleted)
                {
                    _input.AdvanceTo(buffer.End);
                    return RequestBody.ClientGone;
                }
                var slice = buffer.Slice(0, Math.Min(remaining, buffer.Length));
                foreach (var segment in slice)
                {
                    await connection.Io.SendAsync(segment, deadline);
                    Moved();
                }
                remaining -= slice.Length;
                _input.AdvanceTo(slice.End);
                if (remaining > 0 && result.IsCompleted) return RequestBody.ClientGone;
            }
            return RequestBody.Sent;
        }
        finally
        {
            StopWatchingActivity();
        }
    }

    private enum RequestBody
    {
        Sent,
        ClientGone,
        /// <summary>A chunked body that is not chunked (bad size, missing CRLF, bare CR or LF): sent up to the fault only.</summary>
        Invalid,
    }

    /// <summary>
    /// A chunked body, passed on as it came (sizes, extensions, trailers), up to its last chunk and not a byte further:
    /// what follows in the pipe is the client's next request. ChunkedBodyValidator follows it byte by byte, so a size that
    /// is not hex, a chunk not ended by CRLF or a bare CR or LF stops it there and the instance never sees past it.
    /// </summary>
    private async ValueTask<RequestBody> StreamChunkedRequestBodyAsync(UpstreamConnection connection, CancellationToken deadline)
    {
        _chunked.Reset();
        while (true)
        {
            var result = await _input.ReadAsync(deadline);
            Moved();
            var buffer = result.Buffer;
            long consumed = 0;
            foreach (var segment in buffer)
            {
                var used = _chunked.Feed(segment.Span);
                if (used > 0)
                {
                    await connection.Io.SendAsync(segment[..used], deadline);
                    Moved();
                }
                consumed += used;
                if (_chunked.IsInvalid || _chunked.IsDone) break;
            }
            _input.AdvanceTo(buffer.GetPosition(consumed));
            if (_chunked.IsInvalid) return RequestBody.Invalid;
            if (_chunked.IsDone) return RequestBody.Sent;
            if (result.IsCompleted) return RequestBody.ClientGone;
        }
    }

    /// <summary>
    /// Reads into the connection's buffer until a final (non-1xx) response head is complete; 103 Early Hints go to
    /// the client on the way, 100 and 102 are dropped (the client did not ask for them: Expect is Kestrel's). Returns
    /// how many bytes of the buffer hold the head and what followed it.
    /// </summary>
    [AsyncMethodBuilder(typeof(Platform.DeepPoolingValueTaskMethodBuilder<>))]
    private async ValueTask<(ResponseParse Parse, int Received)> ReadResponseHeadAsync(UpstreamConnection connection, bool isHead, CancellationToken deadline)
    {
        var received = 0;
        while (true)
        {
            if (received == connection.Buffer.Length && !connection.TryGrow(received, ResponseHead.MaxLength + 1))
                return (ResponseParse.Malformed, received);
            var n = await connection.Io.ReceiveAsync(connection.Buffer.AsMemory(received), deadline);
            if (n == 0) return (ResponseParse.Incomplete, received);
            received += n;
            _responseBytes += n;
            while (true)
            {
                var parse = _response.Parse(connection.Buffer.AsSpan(0, received), isHead);
                if (parse != ResponseParse.Complete) 
                {
                    if (parse == ResponseParse.Malformed) return (parse, received);
                    break;
                }
                if (_response.Status >= 200) return (parse, received);
                if (_response.Status == 101) return (ResponseParse.Malformed, received); // no Upgrade was asked for here
                if (_response.Status == 103)
                {
                    WriteResponseHead(connection.Buffer.AsSpan(0, _response.Length), close: false, hsts: false);
                    if ((await _output.FlushAsync()).IsCompleted) throw new IOException("the client left");
                }
                // Drop the interim response and look at what follows it.
                var length = _response.Length;
                connection.Buffer.AsSpan(length, received - length).CopyTo(connection.Buffer);
                received -= length;
                if (received == 0) break;
            }
        }
    }

    private readonly record struct Relay(Exchange Exchange, bool UpstreamReusable)
    {
        public Outcome Outcome => Exchange.Outcome;
    }

    /// <summary>The response head (hop-by-hop fields dropped) and its body by its framing, to the client.</summary>
    [AsyncMethodBuilder(typeof(Platform.DeepPoolingValueTaskMethodBuilder<>))]
    private async ValueTask<Relay> RelayResponseAsync(UpstreamConnection connection, int received, bool clientWantsClose, bool hsts)
    {
        var status = _response.Status;
        var framing = _response.Framing;
        // A body delimited by the instance's close is delimited by ours toward the client.
        var closeClient = clientWantsClose || framing == ResponseFraming.UntilClose || _closeRequested;
        var upstreamReusable = _response.KeepAlive;
        var buffer = connection.Buffer;
        WriteResponseHead(buffer.AsSpan(0, _response.Length), closeClient, hsts);
        var extra = buffer.AsSpan(_response.Length, received - _response.Length);
        var complete = false;
        long remaining = 0;
        switch (framing)
        {
            case ResponseFraming.None:
                complete = true;
                if (extra.Length > 0) upstreamReusable = false; // bytes the instance had no right to send
                break;
            case ResponseFraming.ContentLength:
                remaining = _response.ContentLength;
                var take = (int)Math.Min(remaining, extra.Length);
                _output.Write(extra[..take]);
                remaining -= take;
                if (take < extra.Length) upstreamReusable = false;
                complete = remaining == 0;
                break;
            case ResponseFraming.Chunked:
                _chunked.Reset();
                var used = _chunked.Feed(extra);
                _output.Write(extra[..used]);
                if (_chunked.IsInvalid) return Broken(status);
                if (_chunked.IsDone && used < extra.Length) upstreamReusable = false;
                complete = _chunked.IsDone;
                break;
            case ResponseFraming.UntilClose:
                _output.Write(extra);
                break;
        }
        // Only a body that is not here whole is watched (a small response costs no timer call).
        if (!complete) WatchActivity();
        // The whole response goes in this flush and the connection closes after it: TLS's close_notify can go with it.
        else if (closeClient) _frontEnd?.LastFlushFollows();
        try
        {
            if ((await _output.FlushAsync()).IsCompleted) return Gone();
            while (!complete)
            {
                var memory = _output.GetMemory();
                if (framing == ResponseFraming.ContentLength && memory.Length > remaining) memory = memory[..(int)remaining];
                var n = await connection.Io.ReceiveAsync(memory);
                Moved();
                if (n == 0)
                {
                    if (framing == ResponseFraming.UntilClose)
                    {
                        upstreamReusable = false;
                        break;
                    }
                    return Broken(status);
                }
                switch (framing)
                {
                    case ResponseFraming.ContentLength:
                        _output.Advance(n);
                        remaining -= n;
                        complete = remaining == 0;
                        break;
                    case ResponseFraming.Chunked:
                        var used = _chunked.Feed(memory.Span[..n]);
                        _output.Advance(used);
                        if (_chunked.IsInvalid)
                        {
                            await _output.FlushAsync();
                            return Broken(status);
                        }
                        if (_chunked.IsDone && used < n) upstreamReusable = false;
                        complete = _chunked.IsDone;
                        break;
                    default:
                        _output.Advance(n);
                        break;
                }
                if ((await _output.FlushAsync()).IsCompleted) return _stalled ? Broken(status) : Gone();
                Moved();
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException or OperationCanceledException)
        {
            // The instance's connection broke or was closed under us: the client left, or the body stopped moving (the
            // instance is blamed, as for a broken body: mostly it stopped sending, seldom the client stopped reading).
            return _clientGone && !_stalled ? Gone() : Broken(status);
        }
        finally
        {
            StopWatchingActivity();
        }
        return new Relay(new Exchange(Outcome.Relayed, status, KeepClient: !closeClient), upstreamReusable);

        static Relay Broken(int status) => new(new Exchange(Outcome.BrokenAfterHead, status), false);
        static Relay Gone() => new(new Exchange(Outcome.ClientGone), false);
    }

    /// <summary>
    /// The instance's status line as HTTP/1.1 and its fields but the hop-by-hop ones (Connection and what it lists,
    /// Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade); Transfer-Encoding stays, a chunked body passes through as
    /// it came. HSTS is the proxy's own on TLS with hsts. Kestrel adds no Server header here either.
    /// </summary>
    private void WriteResponseHead(ReadOnlySpan<byte> head, bool close, bool hsts)
    {
        var output = _output.GetSpan(head.Length + 96);
        "HTTP/1.1 "u8.CopyTo(output);
        var written = 9;
        head.Slice(9, 3).CopyTo(output[written..]);
        written += 3;
        output[written++] = (byte)' ';
        head.Slice(_response.ReasonStart == 0 ? 12 : _response.ReasonStart, _response.ReasonLength).CopyTo(output[written..]);
        written += _response.ReasonLength;
        Crlf.CopyTo(output[written..]);
        written += 2;
        var fields = _response.Fields.AsSpan(0, _response.FieldCount);
        var hasConnectionList = false;
        foreach (ref readonly var field in fields)
            if (field.Kind == FieldKind.Connection) hasConnectionList = true;
        foreach (ref readonly var field in fields)
        {
            switch (field.Kind)
            {
                case FieldKind.Connection or FieldKind.HopByHop or FieldKind.Upgrade:
                    continue;
                case FieldKind.StrictTransportSecurity when hsts:
                    continue;
                case FieldKind.Other when hasConnectionList && ListedInConnection(head, fields, head.Slice(field.NameStart, field.NameLength)):
                    continue;
            }
            written += AppendLine(output[written..], head[field.NameStart..(field.ValueStart + field.ValueLength)]);
        }
        if (hsts) written += Append(output[written..], "Strict-Transport-Security: "u8, HstsValue);
        if (close) written += Append(output[written..], "Connection: "u8, "close"u8);
        Crlf.CopyTo(output[written..]);
        _output.Advance(written + 2);
    }

    /// <summary>An answer of the proxy's own (400, 502, 503, 504), as Kestrel's path words it.</summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask AnswerAsync(int status, string reason, string? header, string body, bool close)
    {
        var text = new StringBuilder(160)
            .Append("HTTP/1.1 ").Append(status).Append(' ').Append(reason).Append("\r\n")
            .Append("Content-Length: ").Append(Encoding.UTF8.GetByteCount(body)).Append("\r\n");
        if (header is not null) text.Append(header).Append("\r\n");
        if (close || _closeRequested)
        {
            text.Append("Connection: close\r\n");
            _frontEnd?.LastFlushFollows();
        }
        text.Append("\r\n").Append(body);
        _output.Write(Encoding.UTF8.GetBytes(text.ToString()));
        await _output.FlushAsync();
    }
}

