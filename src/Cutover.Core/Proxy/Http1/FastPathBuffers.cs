namespace Cutover.Proxy.Http1;

/// <summary>
/// What every fast-path connection needs whoever its client is: the request and response parsers, the chunked-body
/// validator, the buffer the upstream head is built in, the copy of a head that spans pipe segments, and the last Host
/// and path seen with their routing strings. About 10 KiB, zeroed on allocation, which a new TLS connection paid each
/// time (bench/README.md, TLS termination); a listener keeps the ones of closed connections in its
/// <see cref="FastPathBuffersPool"/> for the next. Nothing in them is read before it is written for the connection at
/// hand: the parsers reset on every parse, heads are built from their first byte and only their own length is sent,
/// and the Host and path caches are keyed by the very bytes they stand for.
/// </summary>
internal sealed class FastPathBuffers
{
    public const int UpstreamHeadSize = 4096;
    /// <summary>A buffer grown past this for one large head is not kept for the next connection.</summary>
    public const int KeptBufferLimit = 16 * 1024;

    public readonly RequestHead Head = new();
    public readonly ResponseHead Response = new();
    public readonly ChunkedBodyValidator Chunked = new();
    public byte[] HeadCopy = [];
    public byte[] UpstreamHead = new byte[UpstreamHeadSize];
    public byte[] LastPath = [];
    public string LastPathText = "/";
    public byte[] LastHost = [];
    public string LastHostName = "";

    /// <summary>Which rent this is (the pool counts them): a return must name the lease it ends.</summary>
    public int Lease { get; private set; }
    /// <summary>1 once the current lease was returned: a second return of it is refused.</summary>
    private int _returned;

    internal void Lend()
    {
        Lease++;
        Volatile.Write(ref _returned, 0);
    }

    /// <summary>Ends <paramref name="lease"/>: false when that is not the current lease, or it was ended already.</summary>
    internal bool TryEnd(int lease) => lease == Lease && Interlocked.Exchange(ref _returned, 1) == 0;
}

/// <summary>
/// A listener's idle <see cref="FastPathBuffers"/>, most recently returned first, at most <see cref="Capacity"/> of them
/// (more are left to the GC: a burst's leftovers are not kept). Each rent is a lease: a second return of one, or the return
/// of a lease that ended (the buffers serve another connection by now), is refused, so one object never serves two
/// connections at once.
/// </summary>
internal sealed class FastPathBuffersPool(int capacity)
{
    private readonly FastPathBuffers?[] _idle = new FastPathBuffers?[capacity];
    private readonly Lock _lock = new();
    private int _count;

    public int Capacity => _idle.Length;

    /// <summary>Buffers waiting for a connection.</summary>
    public int IdleCount
    {
        get
        {
            lock (_lock) return _count;
        }
    }

    public FastPathBuffers Rent()
    {
        lock (_lock)
        {
            if (_count > 0)
            {
                var pooled = _idle[--_count]!;
                _idle[_count] = null;
                pooled.Lend();
                return pooled;
            }
        }
        var buffers = new FastPathBuffers();
        buffers.Lend();
        return buffers;
    }

    /// <summary>Takes back a closed connection's buffers (<paramref name="lease"/>: their Lease when rented); false, and nothing kept, for a lease ended already.</summary>
    public bool Return(FastPathBuffers buffers, int lease)
    {
        if (!buffers.TryEnd(lease)) return false;
        if (buffers.HeadCopy.Length > FastPathBuffers.KeptBufferLimit) buffers.HeadCopy = [];
        if (buffers.UpstreamHead.Length > FastPathBuffers.KeptBufferLimit) buffers.UpstreamHead = new byte[FastPathBuffers.UpstreamHeadSize];
        lock (_lock)
        {
            if (_count == _idle.Length) return true;
            _idle[_count++] = buffers;
        }
        return true;
    }
}
