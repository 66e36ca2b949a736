using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Cutover.Proxy.OpenSsl;

namespace Cutover.Proxy;

/// <summary>
/// A TLS listener's connections, accepted and decrypted here rather than by Kestrel's socket transport and its
/// HttpsConnectionMiddleware: the accept loop starts each handshake on the thread that accepted the connection, OpenSSL
/// reads the socket itself (<see cref="OpenSslStream"/>), and the decrypted bytes go to Http1/'s fast path through one pipe. Kestrel's HTTP
/// pipeline (HTTP/2 by ALPN, and whatever the fast path hands over: upgrades, hand-over decisions) gets the very same
/// connection, TLS already done, through <see cref="HandOverTransport"/>. Why: measured with bench/ (TLS termination,
/// 2026-11-30) Kestrel's connection layer cost a new TLS connection about 190 µs of CPU and 13 context switches beyond
/// what .NET's SslStream on its own accept loop costs (three thread-pool hand-offs: the accepted connection, the
/// aborted receive at close, the closed notification), and keep-alive requests a transport pipe each way.
/// TLS itself is OpenSSL driven directly (Proxy/OpenSsl), not SslStream, which cost more per handshake than nginx on the
/// same libssl: the benchmark's floor on it measured at nginx's CPU per new connection, SslStream's about 8% above
/// (bench/README.md, TLS termination).
/// </summary>
internal sealed class TlsFrontEnd : FrontEnd
{
    /// <summary>Kestrel's default handshake timeout: a client that has not finished its handshake by then is dropped.</summary>
    public static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    public TlsFrontEnd(Listener listener, Socket listening, HandOverTransport kestrel) : base(listener, listening, kestrel)
    {
        Tls = new OpenSslServer(listener.SelectCertificate, Listener.Alpn);
    }

    /// <summary>The listener's OpenSSL contexts: one per certificate in use, picked by SNI.</summary>
    public OpenSslServer Tls { get; }

    /// <summary>Runs up to the handshake's first wait for the network on the accepting thread.</summary>
    protected override FrontEndConnection Accepted(Platform.Epoll.SocketDescriptor socket, IPEndPoint? peer, Platform.Epoll.EpollLoop loop) =>
        new TlsConnection(socket, peer, loop, this);

    /// <summary>Every connection is closed and its SSL object freed: no handshake can call back into the contexts any more.</summary>
    protected override void Stopped() => Tls.Dispose();
}

/// <summary>
/// One client connection of a TLS listener: the handshake (certificate by SNI, ALPN h2/http1.1), then a pump that
/// decrypts into the pipe the fast path (or Kestrel) reads, as Kestrel's transport would fill it: the pipe ends and
/// <see cref="ConnectionClosed"/> fires when the client leaves, also while nobody reads. Responses go out through a
/// writer straight on the <see cref="OpenSslStream"/>: one TLS record per flushed segment, one send per flush.
/// </summary>
internal sealed class TlsConnection : FrontEndConnection, ITlsConnectionFeature, ITlsApplicationProtocolFeature
{
    private readonly TlsFrontEnd _frontEnd;
    private OpenSslStream? _ssl;
    private PipeWriter? _toClient;
    /// <summary>Whoever served the connection is done: what the pump's last wait for data finds is not read any more.</summary>
    private volatile bool _closing;

    public TlsConnection(Platform.Epoll.SocketDescriptor socket, IPEndPoint? peer, Platform.Epoll.EpollLoop loop, TlsFrontEnd frontEnd)
        : base(socket, peer, loop, frontEnd, "tls")
    {
        _frontEnd = frontEnd;
        Features.Set<ITlsConnectionFeature>(this);
        Features.Set<ITlsApplicationProtocolFeature>(this);
    }

    protected override PipeWriter ToClient => _toClient!;

    public ReadOnlyMemory<byte> ApplicationProtocol => _ssl?.NegotiatedApplicationProtocol ?? ReadOnlyMemory<byte>.Empty;
    public X509Certificate2? ClientCertificate { get; set; }
    public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult<X509Certificate2?>(null);

    public override async Task RunAsync()
    {
        try
        {
            // The certificate is picked by SNI in the handshake (OpenSslServer's server-name callback): no certificate for
            // the name, no handshake.
            var ssl = _ssl = new OpenSslStream(Io, _frontEnd.Tls);
            using (var handshake = new CancellationTokenSource(TlsFrontEnd.HandshakeTimeout))
                await ssl.HandshakeAsync(handshake.Token);
            _toClient = PipeWriter.Create(ssl, new StreamPipeWriterOptions(leaveOpen: true));
            Transport = this;
            var pump = PumpAsync(ssl);
            if (ssl.NegotiatedApplicationProtocol.Span.SequenceEqual(SslApplicationProtocol.Http2.Protocol.Span))
                await HandOverAsync(this);
            else
            {
                Enter(Stage.FastPath);
                await Http1.FastPathConnection.ServeAsync(this, HandOverAsync, _frontEnd.Listener);
            }
            Enter(Stage.Closing);
            // Whoever served it is done. Shut down first and let the pump's pending read see the end (on the socket
            // thread, by epoll): closing the socket under a pending read would abort it, and .NET completes an aborted
            // read through the thread pool, one hand-off per connection (measured).
            await _toClient.CompleteAsync();
            await FromClient.Reader.CompleteAsync();
            // close_notify, so the client knows the response was not cut short (best effort: it may be gone).
            if (!Aborted)
                try { await ssl.ShutdownAsync(CancellationToken.None); } catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException) { }
            _closing = true;
            Io.Shutdown(SocketShutdown.Both);
            await pump;
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException or OperationCanceledException or ObjectDisposedException
                                      or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            // A failed or abandoned handshake, or a client gone mid-write: the connection closes, as Kestrel's would.
        }
        finally
        {
            Close();
            Forget();
        }
    }

    /// <summary>Decrypts what the client sends into the pipe, until it closes (or the connection is aborted).</summary>
    private async Task PumpAsync(OpenSslStream ssl)
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                // Wait for data with a zero-byte read first, as Kestrel's TLS adapter does: an idle connection then holds
                // no pipe segment while it waits (and OpenSSL none of its record buffers: SSL_MODE_RELEASE_BUFFERS).
                if (await ssl.ReadAsync(Memory<byte>.Empty) < 0 || _closing) break;
                var memory = FromClient.Writer.GetMemory(4096);
                var read = await ssl.ReadAsync(memory);
                if (read == 0) break;
                FromClient.Writer.Advance(read);
                if ((await FromClient.Writer.FlushAsync()).IsCompleted) break;
            }
        }
        catch (Exception e)
        {
            error = InputFailure(e);
        }
        // An abort shuts the socket down, which the pump sees as the end: the reader is told it was an abort all the same.
        if (error is null && Aborted) error = new ConnectionAbortedException("the connection was aborted");
        await EndInputAsync(error);
    }

    private void Close()
    {
        // The SSL object first (no call of it is in flight by now: the pump and the writer are done), then the descriptor.
        _ssl?.Dispose();
        Io.Dispose();
    }

    public override void LastFlushFollows() => _ssl?.CloseNotifyWithNextFlush();

    public override void Abort(ConnectionAbortedException abortReason)
    {
        MarkAborted();
        // Shutting the socket down ends the pump (its wait for data sees the end) and any write in flight. Not a close: the
        // descriptor stays open until the connection has freed its SSL object (Close), so no read of OpenSSL's can
        // land on the number reused by another connection.
        Io.Shutdown(SocketShutdown.Both);
    }
}
