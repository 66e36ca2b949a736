using System.Net.Security;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Cutover.Proxy.OpenSsl;

/// <summary>An SSL_CTX, freed (SSL_CTX_free: OpenSSL's reference, so connections using it keep it) when the handle goes.</summary>
internal sealed class SslContextHandle : SafeHandle
{
    public SslContextHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;
    protected override bool ReleaseHandle()
    {
        LibSsl.SSL_CTX_free(handle);
        return true;
    }

    public static SslContextHandle Own(IntPtr context)
    {
        var owned = new SslContextHandle();
        owned.SetHandle(context);
        return owned;
    }
}

/// <summary>
/// The server side of TLS on OpenSSL for one listener: one SSL_CTX per certificate, made on its first handshake and kept
/// as long as the certificate context is (a reloaded or renewed certificate is a new context, so the next handshake gets
/// a new SSL_CTX). A connection starts on the context of the certificate the last handshake picked (a certificate-less
/// front context before the first); the server-name callback, on every context, asks <see cref="_select"/> for the SNI
/// name's certificate and switches the connection to its context (SSL_set_SSL_CTX, as nginx does for its virtual
/// servers) only when that is not the one it started on: a listener with one certificate never switches (the switch
/// copies the certificate state; starting on the right context took the benchmark's floor from 304 to about 290 µs of
/// CPU per full handshake, bench/README.md).
/// Every context has the same session-ticket keys, so a ticket decrypts whichever context the connection started on; it
/// resumes only under the server name its session was made for (<see cref="OnTicketDecrypted"/>). TLS 1.2 and 1.3, no renegotiation, ALPN from
/// <see cref="_alpn"/> in the server's order, session tickets on (OpenSSL's defaults, as nginx's), no server-side
/// session cache (nginx's default `ssl_session_cache none`). Disposed only when no connection of it is left: the native
/// callbacks find this object through a GCHandle that disposal frees. Every TLS listener's TlsFrontEnd runs on it (and
/// the TLS benchmark's OpenSSL floor, bench/Cutover.Bench/TlsFloorServer.cs).
/// </summary>
internal sealed unsafe class OpenSslServer : IDisposable
{
    private readonly Func<string?, SslStreamCertificateContext?> _select;
    private readonly ConditionalWeakTable<SslStreamCertificateContext, SslContextHandle> _contexts = [];
    private readonly SslContextHandle _front;
    /// <summary>The context the last handshake switched to or stayed on: where the next connection starts.</summary>
    private SslContextHandle? _lastSelected;
    /// <summary>Session-ticket keys (name, HMAC and AES keys: 80 bytes) every context of this listener shares.</summary>
    private readonly byte[] _ticketKeys = RandomNumberGenerator.GetBytes(80);
    private readonly GCHandle _self;
    /// <summary>The ALPN protocols in wire form (length-prefixed), pinned: SSL_select_next_proto's answer points into it.</summary>
    private readonly byte[] _alpn;

    public OpenSslServer(Func<string?, SslStreamCertificateContext?> select, IReadOnlyList<SslApplicationProtocol> alpn)
    {
        _select = select;
        var wire = new List<byte>();
        foreach (var protocol in alpn)
        {
            wire.Add((byte)protocol.Protocol.Length);
            wire.AddRange(protocol.Protocol.ToArray());
        }
        _alpn = GC.AllocateArray<byte>(wire.Count, pinned: true);
        wire.CopyTo(_alpn);
        _self = GCHandle.Alloc(this);
        _front = NewContext();
    }

    /// <summary>A new server-side SSL object on the context the last handshake picked (IntPtr.Zero: OpenSSL failed).</summary>
    public IntPtr NewSsl()
    {
        var context = Volatile.Read(ref _lastSelected) ?? _front;
        var ssl = LibSsl.SSL_new(context.DangerousGetHandle()); // takes its own reference on the context
        GC.KeepAlive(context);
        return ssl;
    }

    /// <summary>The SSL_CTX of <paramref name="certificate"/>, made on first use.</summary>
    internal SslContextHandle ContextFor(SslStreamCertificateContext certificate) =>
        _contexts.GetValue(certificate, c => Build(c));

    private SslContextHandle NewContext()
    {
        var context = LibSsl.SSL_CTX_new(LibSsl.TLS_server_method());
        if (context == IntPtr.Zero) throw new CryptographicException(LibSsl.TakeError("SSL_CTX_new failed"));
        var owned = SslContextHandle.Own(context);
        LibSsl.SSL_CTX_set_options(context, LibSsl.OpNoRenegotiation | LibSsl.OpCipherServerPreference | LibSsl.OpIgnoreUnexpectedEof);
        LibSsl.SSL_CTX_ctrl(context, LibSsl.CtrlSetMinProtoVersion, LibSsl.Tls12Version, IntPtr.Zero);
        // Idle connections give their record buffers back (nginx sets the same): a keep-alive connection waiting for its
        // next request then holds no 16 KiB+ buffers, as SslStream's zero-byte reads achieved.
        LibSsl.SSL_CTX_ctrl(context, LibSsl.CtrlMode, LibSsl.ModeReleaseBuffers, IntPtr.Zero);
        // Read whole socket buffers rather than a record header and then its body: one read(2) per request, not two.
        LibSsl.SSL_CTX_ctrl(context, LibSsl.CtrlSetReadAhead, 1, IntPtr.Zero);
        LibSsl.SSL_CTX_ctrl(context, LibSsl.CtrlSetSessionCacheMode, LibSsl.SessionCacheServer | LibSsl.SessionCacheNoInternal, IntPtr.Zero);
        // The server-name callback is the starting context's, ALPN is answered from the context the connection runs on by
        // then: every context gets both.
        LibSsl.SSL_CTX_callback_ctrl(context, LibSsl.CtrlSetServerNameCallback, (IntPtr)(delegate* unmanaged<IntPtr, int*, IntPtr, int>)&OnServerName);
        LibSsl.SSL_CTX_ctrl(context, LibSsl.CtrlSetServerNameArg, 0, GCHandle.ToIntPtr(_self));
        LibSsl.SSL_CTX_set_alpn_select_cb(context, &OnAlpn, GCHandle.ToIntPtr(_self));
        fixed (byte* keys = _ticketKeys) LibSsl.SSL_CTX_ctrl(context, LibSsl.CtrlSetTicketKeys, _ticketKeys.Length, (IntPtr)keys);
        // OpenSSL asks the context the connection started on (its session context): every context gets the check.
        LibSsl.SSL_CTX_set_session_ticket_cb(context, IntPtr.Zero, &OnTicketDecrypted, IntPtr.Zero);
        return owned;
    }

    private SslContextHandle Build(SslStreamCertificateContext certificate)
    {
        var context = NewContext();
        try
        {
            var ctx = context.DangerousGetHandle();
            var leaf = certificate.TargetCertificate;
            var der = leaf.RawData;
            fixed (byte* p = der)
                if (LibSsl.SSL_CTX_use_certificate_ASN1(ctx, der.Length, p) != 1)
                    throw new CryptographicException(LibSsl.TakeError("the certificate was refused"));
            var pkcs8 = ExportPrivateKey(leaf);
            try
            {
                fixed (byte* p = pkcs8)
                {
                    var cursor = p;
                    var key = LibSsl.d2i_AutoPrivateKey(IntPtr.Zero, &cursor, pkcs8.Length);
                    if (key == IntPtr.Zero) throw new CryptographicException(LibSsl.TakeError("the private key was refused"));
                    var used = LibSsl.SSL_CTX_use_PrivateKey(ctx, key);
                    LibSsl.EVP_PKEY_free(key); // SSL_CTX_use_PrivateKey took its own reference
                    if (used != 1) throw new CryptographicException(LibSsl.TakeError("the private key was refused"));
                }
            }
            finally
            {
                CryptographicOperations.ZeroMemory(pkcs8);
            }
            if (LibSsl.SSL_CTX_check_private_key(ctx) != 1) throw new CryptographicException(LibSsl.TakeError("the private key does not match the certificate"));
            foreach (var intermediate in certificate.IntermediateCertificates)
            {
                var raw = intermediate.RawData;
                fixed (byte* p = raw)
                {
                    var cursor = p;
                    var x509 = LibSsl.d2i_X509(IntPtr.Zero, &cursor, raw.Length);
                    if (x509 == IntPtr.Zero) throw new CryptographicException(LibSsl.TakeError("an intermediate certificate was refused"));
                    // add1: the chain takes its own reference.
                    var added = LibSsl.SSL_CTX_ctrl(ctx, LibSsl.CtrlChainCertificate, 1, x509);
                    LibSsl.X509_free(x509);
                    if (added != 1) throw new CryptographicException(LibSsl.TakeError("an intermediate certificate was refused"));
                }
            }
            return context;
        }
        catch
        {
            context.Dispose();
            throw;
        }
    }

    private static byte[] ExportPrivateKey(X509Certificate2 certificate)
    {
        using AsymmetricAlgorithm key = certificate.GetECDsaPrivateKey() as AsymmetricAlgorithm
            ?? certificate.GetRSAPrivateKey() as AsymmetricAlgorithm
            ?? throw new CryptographicException("the certificate has no ECDSA or RSA private key");
        return key.ExportPkcs8PrivateKey();
    }

    /// <summary>Server-name callback: the SNI name's certificate context (switched to unless the connection is on it), or no handshake.</summary>
    [UnmanagedCallersOnly]
    private static int OnServerName(IntPtr ssl, int* alert, IntPtr arg)
    {
        try
        {
            var server = (OpenSslServer)GCHandle.FromIntPtr(arg).Target!;
            var name = Marshal.PtrToStringUTF8(LibSsl.SSL_get_servername(ssl, LibSsl.NameTypeHostName));
            if (server._select(name) is not { } certificate)
            {
                *alert = LibSsl.AlertUnrecognizedName;
                return LibSsl.TlsExtAlertFatal;
            }
            var context = server.ContextFor(certificate);
            // SSL_set_SSL_CTX takes its own reference on the context: the connection keeps it if the certificate is dropped.
            if (LibSsl.SSL_get_SSL_CTX(ssl) != context.DangerousGetHandle()) LibSsl.SSL_set_SSL_CTX(ssl, context.DangerousGetHandle());
            Volatile.Write(ref server._lastSelected, context);
            return LibSsl.TlsExtOk;
        }
        catch (Exception)
        {
            // Nothing may unwind into OpenSSL: a certificate that cannot be loaded fails this handshake only.
            *alert = LibSsl.AlertUnrecognizedName;
            return LibSsl.TlsExtAlertFatal;
        }
    }

    /// <summary>
    /// Session-ticket decryption callback: a ticket resumes only under the server name its session was made for (RFC 8446
    /// 4.6.1, RFC 6066 section 3); under any other name the handshake is a full one (and issues a fresh ticket), so that
    /// name's certificate is authenticated. OpenSSL does not check this itself: TLS 1.3 ignores the name on resumption, and
    /// TLS 1.2 resumes and reports the session's old name to the server-name callback. With the ticket keys shared by
    /// every context of the listener, a.test's ticket would otherwise resume into b.test's connection. A certificate
    /// reloaded for the same name does not stop resumption (as nginx with its ticket keys: the name is what was authenticated).
    /// </summary>
    [UnmanagedCallersOnly]
    private static int OnTicketDecrypted(IntPtr ssl, IntPtr session, byte* keyName, nuint keyNameLength, int status, IntPtr arg)
    {
        // No ticket, or one these keys did not make: OpenSSL's own outcome (a full handshake) stands.
        if (status is not (LibSsl.TicketSuccess or LibSsl.TicketSuccessRenew)) return LibSsl.TicketReturnIgnoreRenew;
        try
        {
            var sessionName = LibSsl.SSL_SESSION_get0_hostname(session);
            var madeFor = sessionName is null ? [] : MemoryMarshal.CreateReadOnlySpanFromNullTerminated(sessionName);
            if (!SameServerName(OfferedServerName(ssl), madeFor)) return LibSsl.TicketReturnIgnoreRenew;
            return status == LibSsl.TicketSuccessRenew ? LibSsl.TicketReturnUseRenew : LibSsl.TicketReturnUse;
        }
        catch (Exception)
        {
            // Nothing may unwind into OpenSSL: in doubt, a full handshake.
            return LibSsl.TicketReturnIgnoreRenew;
        }
    }

    /// <summary>
    /// The host name of this ClientHello's server_name extension (empty: none). Read from the ClientHello itself: while a
    /// TLS 1.2 ticket is decrypted OpenSSL has not parsed the extension yet, and SSL_get_servername would then report the
    /// resumed session's name, not the one asked for now.
    /// </summary>
    private static ReadOnlySpan<byte> OfferedServerName(IntPtr ssl)
    {
        byte* data;
        nuint length;
        if (LibSsl.SSL_client_hello_get0_ext(ssl, LibSsl.ExtensionServerName, &data, &length) != 1) return [];
        // ServerNameList: a 2-byte length, then entries of a type byte (0: host_name), a 2-byte length and the name.
        var list = new ReadOnlySpan<byte>(data, (int)Math.Min(length, ushort.MaxValue + 2u));
        if (list.Length < 2) return [];
        list = list[2..Math.Min(list.Length, 2 + (list[0] << 8 | list[1]))];
        while (list.Length >= 3)
        {
            var nameLength = list[1] << 8 | list[2];
            if (list.Length < 3 + nameLength) return [];
            if (list[0] == LibSsl.NameTypeHostName) return list.Slice(3, nameLength);
            list = list[(3 + nameLength)..];
        }
        return [];
    }

    /// <summary>DNS names compare without case and without a trailing dot (a.test, A.TEST. are one name).</summary>
    private static bool SameServerName(ReadOnlySpan<byte> offered, ReadOnlySpan<byte> madeFor) =>
        System.Text.Ascii.EqualsIgnoreCase(offered.TrimEnd((byte)'.'), madeFor.TrimEnd((byte)'.'));

    /// <summary>ALPN select callback: the first of the server's protocols the client offers; none in common, no ALPN.</summary>
    [UnmanagedCallersOnly]
    private static int OnAlpn(IntPtr ssl, byte** output, byte* outputLength, byte* client, uint clientLength, IntPtr arg)
    {
        var server = (OpenSslServer)GCHandle.FromIntPtr(arg).Target!;
        fixed (byte* wire = server._alpn)
            return LibSsl.SSL_select_next_proto(output, outputLength, wire, (uint)server._alpn.Length, client, clientLength) == LibSsl.NpnNegotiated
                ? LibSsl.TlsExtOk : LibSsl.TlsExtNoAck;
    }

    public void Dispose()
    {
        _front.Dispose();
        if (_self.IsAllocated) _self.Free();
    }
}
