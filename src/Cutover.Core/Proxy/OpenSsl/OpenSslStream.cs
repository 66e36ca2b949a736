using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Authentication;

namespace Cutover.Proxy.OpenSsl;

/// <summary>The SSL object of one connection (SSL_free when the handle goes, which also frees its two BIOs).</summary>
internal sealed class SslHandle : SafeHandle
{
    public SslHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override bool ReleaseHandle()
    {
        LibSsl.SSL_free(handle);
        return true;
    }

    public static SslHandle Own(IntPtr ssl)
    {
        var owned = new SslHandle();
        owned.SetHandle(ssl);
        return owned;
    }
}

/// <summary>
/// The server side of one TLS connection on OpenSSL, without SslStream: OpenSSL reads the socket's descriptor itself
/// (a socket BIO, the socket non-blocking), so a record is decrypted straight into the caller's buffer; a read that finds
/// nothing (SSL_ERROR_WANT_READ) waits for readability with a zero-byte receive, which consumes nothing. Writes encrypt
/// into a memory BIO and go out with the next flush (or once 64 KiB are pending) in one send: a response flushed as
/// several segments is one send(2). Every SSL_* call is made under <see cref="_gate"/> (OpenSSL's SSL object is not
/// safe for a reader and a writer at once), never across an await, so a call never waits for the network holding it.
/// OpenSSL holds the socket's descriptor number: the owner disposes this stream (which frees the SSL object) before it
/// closes the socket, and aborts a connection with a shutdown(2), never a close, so no read of OpenSSL's can land on
/// the number reused by another connection. (A reference on the SafeSocketHandle would not do: Socket.Dispose spins
/// until every reference is released.)
/// </summary>
internal sealed class OpenSslStream : Stream
{
    /// <summary>Ciphertext pending beyond this is sent before more is encrypted: a large body never piles up in memory.</summary>
    private const int SendThreshold = 64 * 1024;

    private readonly Platform.Epoll.EpollSocket _io;
    private readonly SslHandle _ssl;
    private readonly IntPtr _writeBio;
    private readonly Lock _gate = new();
    /// <summary>One sender at a time: the writer's flushes and what a read made OpenSSL answer (a TLS 1.3 KeyUpdate).</summary>
    private readonly SemaphoreSlim _sending = new(1, 1);
    private bool _disposed;
    /// <summary>The next flush ends with close_notify (<see cref="CloseNotifyWithNextFlush"/>).</summary>
    private volatile bool _closeNotifyOnFlush;
    /// <summary>close_notify is in the write BIO (or sent): no SSL_shutdown again, no SSL_write after it.</summary>
    private bool _closeNotifyWritten;

    /// <param name="io">The connection's socket (non-blocking: OpenSSL's own read(2) must not block a socket thread).</param>
    public OpenSslStream(Platform.Epoll.EpollSocket io, OpenSslServer server)
    {
        _io = io;
        var ssl = server.NewSsl();
        if (ssl == IntPtr.Zero)
        {
            throw new IOException(LibSsl.TakeError("SSL_new failed"));
        }
        _ssl = SslHandle.Own(ssl);
        var readBio = LibSsl.BIO_new_socket((int)io.Handle.DangerousGetHandle(), 0 /* BIO_NOCLOSE: the EpollSocket closes it */);
        _writeBio = LibSsl.BIO_new(LibSsl.BIO_s_mem());
        if (readBio == IntPtr.Zero || _writeBio == IntPtr.Zero)
        {
            if (readBio != IntPtr.Zero) LibSsl.BIO_free(readBio);
            if (_writeBio != IntPtr.Zero) LibSsl.BIO_free(_writeBio);
            _ssl.Dispose();
            throw new IOException("BIO_new failed");
        }
        LibSsl.SSL_set_bio(ssl, readBio, _writeBio); // the SSL object owns both from here
        LibSsl.SSL_set_accept_state(ssl);
    }

    /// <summary>The ALPN protocol the handshake settled on (empty: none).</summary>
    public ReadOnlyMemory<byte> NegotiatedApplicationProtocol { get; private set; } = ReadOnlyMemory<byte>.Empty;

    /// <summary>The protocol version (0x0303 TLS 1.2, 0x0304 TLS 1.3), once the handshake is done.</summary>
    public int ProtocolVersion { get; private set; }

    public async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var (done, failure) = HandshakeStep();
            // The server's flight, the session tickets after it, or the alert of a failure.
            if (failure is null) await SendPendingAsync(cancellationToken);
            else
            {
                try { await SendPendingAsync(cancellationToken); } catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException) { }
                throw new AuthenticationException(failure);
            }
            if (done) return;
            await WaitReadableAsync(cancellationToken);
        }
    }

    /// <summary>One SSL_do_handshake: done, or waiting for the client (neither), or failed (the reason).</summary>
    private unsafe (bool Done, string? Failure) HandshakeStep()
    {
        lock (_gate)
        {
            var ssl = Ssl();
            LibSsl.ERR_clear_error();
            var edges = _io.ReadEdges;
            var result = LibSsl.SSL_do_handshake(ssl);
            if (result == 1)
            {
                byte* protocol;
                uint length;
                LibSsl.SSL_get0_alpn_selected(ssl, &protocol, &length);
                if (length > 0) NegotiatedApplicationProtocol = new ReadOnlySpan<byte>(protocol, (int)length).ToArray();
                ProtocolVersion = LibSsl.SSL_version(ssl);
                return (true, null);
            }
            var error = LibSsl.SSL_get_error(ssl, result);
            if (error == LibSsl.ErrorWantRead)
            {
                // OpenSSL's read(2) found the socket empty: the next wait waits for epoll.
                _io.ReadFoundEmpty(edges);
                return (false, null);
            }
            return (false, LibSsl.TakeError(error == LibSsl.ErrorSyscall ? "the client closed the connection during the handshake" : $"handshake failed (SSL error {error})"));
        }
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return WaitForDataAsync(cancellationToken);
        // The common case, decrypted without an await: a record already in (or readable from) the socket.
        var read = TryRead(buffer.Span, out var error);
        if (read > 0 || error is LibSsl.ErrorZeroReturn) return ValueTask.FromResult(read);
        return ReadSlowAsync(buffer, error, cancellationToken);
    }

    private async ValueTask<int> ReadSlowAsync(Memory<byte> buffer, int error, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (error == LibSsl.ErrorWantWrite) await SendPendingAsync(cancellationToken);
            else await WaitReadableAsync(cancellationToken);
            var read = TryRead(buffer.Span, out error);
            if (read > 0 || error is LibSsl.ErrorZeroReturn) return read;
        }
    }

    /// <summary>A zero-byte read: completes (with 0) when there is something to decrypt, consuming nothing (no buffer held while idle).</summary>
    private ValueTask<int> WaitForDataAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
            if (LibSsl.SSL_has_pending(Ssl()) == 1) return ValueTask.FromResult(0);
        return WaitReadableAsync(cancellationToken);
    }

    /// <summary>
    /// One SSL_read: bytes read (&gt; 0), or 0 with <paramref name="error"/> WANT_READ (nothing yet), ZERO_RETURN (the client
    /// closed, with or without close_notify) or WANT_WRITE (OpenSSL has something to send first, a KeyUpdate answer).
    /// </summary>
    private unsafe int TryRead(Span<byte> buffer, out int error)
    {
        string? failure;
        bool mustSend;
        lock (_gate)
        {
            var ssl = Ssl();
            LibSsl.ERR_clear_error();
            var edges = _io.ReadEdges;
            int read;
            fixed (byte* p = buffer) read = LibSsl.SSL_read(ssl, p, buffer.Length);
            mustSend = LibSsl.BIO_ctrl_pending(_writeBio) > 0;
            if (read > 0)
            {
                error = mustSend ? LibSsl.ErrorWantWrite : LibSsl.ErrorNone;
                // Data now and something to send: the data first, the sending with the next read or write.
                return read;
            }
            error = LibSsl.SSL_get_error(ssl, read);
            if (error == LibSsl.ErrorWantRead)
            {
                // OpenSSL's read(2) found the socket empty: the next wait waits for epoll.
                _io.ReadFoundEmpty(edges);
                if (mustSend) error = LibSsl.ErrorWantWrite;
            }
            if (error is LibSsl.ErrorWantRead or LibSsl.ErrorWantWrite or LibSsl.ErrorZeroReturn) return 0;
            failure = LibSsl.TakeError(error == LibSsl.ErrorSyscall ? "the connection was reset" : $"TLS read failed (SSL error {error})");
        }
        throw new IOException(failure);
    }

    public override unsafe void Write(ReadOnlySpan<byte> buffer)
    {
        string? failure = null;
        lock (_gate)
        {
            var ssl = Ssl();
            LibSsl.ERR_clear_error();
            while (!buffer.IsEmpty && failure is null)
            {
                int written;
                fixed (byte* p = buffer) written = LibSsl.SSL_write(ssl, p, buffer.Length);
                // Into a memory BIO SSL_write takes everything at once; anything else is a failed connection.
                if (written <= 0) failure = LibSsl.TakeError($"TLS write failed (SSL error {LibSsl.SSL_get_error(ssl, written)})");
                else buffer = buffer[written..];
            }
        }
        if (failure is not null) throw new IOException(failure);
    }

    /// <summary>Encrypts now; sends with the flush (one send for everything written since the last), or once 64 KiB are pending.</summary>
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return PendingCiphertext() >= SendThreshold ? SendPendingAsync(cancellationToken) : ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken)
    {
        if (_closeNotifyOnFlush) WriteCloseNotify();
        return SendPendingAsync(cancellationToken).AsTask();
    }

    /// <summary>
    /// The next flush is the connection's last: close_notify goes into the same send as what it flushes (one send(2) and
    /// one segment to the client per connection fewer than a <see cref="ShutdownAsync"/> after it), and the connection
    /// writes nothing more.
    /// </summary>
    public void CloseNotifyWithNextFlush() => _closeNotifyOnFlush = true;

    /// <summary>Sends close_notify (best effort: the client may be gone); nothing when the last flush carried it already.</summary>
    public async ValueTask ShutdownAsync(CancellationToken cancellationToken)
    {
        if (!WriteCloseNotify()) return;
        await SendPendingAsync(cancellationToken);
    }

    /// <summary>SSL_shutdown into the write BIO, once; false when it was written before (or the stream is disposed).</summary>
    private bool WriteCloseNotify()
    {
        lock (_gate)
        {
            if (_disposed || _closeNotifyWritten) return false;
            _closeNotifyWritten = true;
            LibSsl.ERR_clear_error();
            LibSsl.SSL_shutdown(_ssl.DangerousGetHandle());
            LibSsl.ERR_clear_error();
            return true;
        }
    }

    private int PendingCiphertext()
    {
        lock (_gate) return _disposed ? 0 : (int)LibSsl.BIO_ctrl_pending(_writeBio);
    }

    /// <summary>Everything the memory BIO holds, to the socket, in as few sends as its size allows.</summary>
    private async ValueTask SendPendingAsync(CancellationToken cancellationToken)
    {
        await _sending.WaitAsync(cancellationToken);
        byte[]? chunk = null;
        try
        {
            int length;
            while ((length = TakeCiphertext(ref chunk)) > 0)
                await _io.SendAsync(chunk.AsMemory(0, length), cancellationToken);
        }
        finally
        {
            if (chunk is not null) ArrayPool<byte>.Shared.Return(chunk);
            _sending.Release();
        }
    }

    /// <summary>
    /// Moves up to 64 KiB of pending ciphertext into <paramref name="chunk"/> (rented, grown as needed); 0 when none is
    /// pending. Copied out under the gate: a read may append to the BIO (and move its buffer) while the send waits.
    /// </summary>
    private unsafe int TakeCiphertext(ref byte[]? chunk)
    {
        lock (_gate)
        {
            var pending = _disposed ? 0 : (int)Math.Min(LibSsl.BIO_ctrl_pending(_writeBio), (nuint)SendThreshold);
            if (pending == 0) return 0;
            if (chunk is null || chunk.Length < pending)
            {
                if (chunk is not null) ArrayPool<byte>.Shared.Return(chunk);
                chunk = ArrayPool<byte>.Shared.Rent(pending);
            }
            fixed (byte* p = chunk) return LibSsl.BIO_read(_writeBio, p, pending);
        }
    }

    /// <summary>
    /// Completes (with 0) once the socket is readable, consuming nothing: no system call at all when the last read found
    /// it empty (it waits for epoll's next edge). The socket's own ValueTask, not an async method around it: no state
    /// machine per wait (a new TLS connection waits three or four times).
    /// </summary>
    private ValueTask<int> WaitReadableAsync(CancellationToken cancellationToken) => _io.WaitReadableAsync(cancellationToken);

    private IntPtr Ssl() => _disposed ? throw new ObjectDisposedException(nameof(OpenSslStream)) : _ssl.DangerousGetHandle();

    /// <summary>Frees the SSL object (no SSL_* call is in flight: they all hold the gate); the socket stays the owner's to close.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            lock (_gate)
            {
                if (_disposed) return;
                _disposed = true;
                _ssl.Dispose();
            }
        }
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() => throw new NotSupportedException("flush asynchronously");
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("read asynchronously");
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
}
