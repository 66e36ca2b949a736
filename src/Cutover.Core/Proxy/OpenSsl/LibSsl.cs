using System.Runtime.InteropServices;

namespace Cutover.Proxy.OpenSsl;

/// <summary>
/// The part of OpenSSL 3's libssl and libcrypto the TLS front end drives directly (the same libraries .NET's SslStream
/// loads on Linux). Macros of ssl.h appear as the SSL_CTX_ctrl/SSL_CTX_callback_ctrl calls they expand to.
/// </summary>
internal static unsafe partial class LibSsl
{
    private const string Ssl = "libssl.so.3";
    private const string Crypto = "libcrypto.so.3";

    public const int ErrorNone = 0;
    public const int ErrorSsl = 1;
    public const int ErrorWantRead = 2;
    public const int ErrorWantWrite = 3;
    public const int ErrorSyscall = 5;
    public const int ErrorZeroReturn = 6;

    public const ulong OpIgnoreUnexpectedEof = 1UL << 7;
    public const ulong OpCipherServerPreference = 1UL << 22;
    public const ulong OpNoRenegotiation = 1UL << 30;

    public const int CtrlMode = 33;
    public const int CtrlSetReadAhead = 41;
    public const int CtrlSetSessionCacheMode = 44;
    public const int CtrlSetServerNameCallback = 53;
    public const int CtrlSetServerNameArg = 54;
    public const int CtrlSetTicketKeys = 59;
    public const int CtrlChainCertificate = 89;
    public const int CtrlSetMinProtoVersion = 123;

    public const long ModeReleaseBuffers = 0x10;
    public const long SessionCacheServer = 0x0002;
    public const long SessionCacheNoInternal = 0x0300;
    public const long Tls12Version = 0x0303;

    public const int TicketSuccess = 5;
    public const int TicketSuccessRenew = 6;
    public const int TicketReturnIgnoreRenew = 2;
    public const int TicketReturnUse = 3;
    public const int TicketReturnUseRenew = 4;
    public const uint ExtensionServerName = 0;

    public const int TlsExtOk = 0;
    public const int TlsExtAlertFatal = 2;
    public const int TlsExtNoAck = 3;
    public const int AlertUnrecognizedName = 112;
    public const int NameTypeHostName = 0;
    public const int NpnNegotiated = 1;

    [LibraryImport(Ssl)] public static partial IntPtr TLS_server_method();
    [LibraryImport(Ssl)] public static partial IntPtr SSL_CTX_new(IntPtr method);
    [LibraryImport(Ssl)] public static partial void SSL_CTX_free(IntPtr ctx);
    [LibraryImport(Ssl)] public static partial long SSL_CTX_ctrl(IntPtr ctx, int command, long larg, IntPtr parg);
    [LibraryImport(Ssl)] public static partial long SSL_CTX_callback_ctrl(IntPtr ctx, int command, IntPtr callback);
    [LibraryImport(Ssl)] public static partial ulong SSL_CTX_set_options(IntPtr ctx, ulong options);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_use_certificate_ASN1(IntPtr ctx, int length, byte* der);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_use_PrivateKey(IntPtr ctx, IntPtr key);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_check_private_key(IntPtr ctx);
    [LibraryImport(Ssl)] public static partial void SSL_CTX_set_alpn_select_cb(IntPtr ctx,
        delegate* unmanaged<IntPtr, byte**, byte*, byte*, uint, IntPtr, int> callback, IntPtr arg);
    [LibraryImport(Ssl)] public static partial int SSL_CTX_set_session_ticket_cb(IntPtr ctx, IntPtr generate,
        delegate* unmanaged<IntPtr, IntPtr, byte*, nuint, int, IntPtr, int> decrypt, IntPtr arg);
    [LibraryImport(Ssl)] public static partial int SSL_client_hello_get0_ext(IntPtr ssl, uint type, byte** data, nuint* length);
    [LibraryImport(Ssl)] public static partial byte* SSL_SESSION_get0_hostname(IntPtr session);
    [LibraryImport(Ssl)] public static partial int SSL_select_next_proto(byte** output, byte* outputLength, byte* server, uint serverLength, byte* client, uint clientLength);

    [LibraryImport(Ssl)] public static partial IntPtr SSL_new(IntPtr ctx);
    [LibraryImport(Ssl)] public static partial void SSL_free(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial void SSL_set_bio(IntPtr ssl, IntPtr readBio, IntPtr writeBio);
    [LibraryImport(Ssl)] public static partial void SSL_set_accept_state(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial int SSL_do_handshake(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial int SSL_read(IntPtr ssl, byte* buffer, int length);
    [LibraryImport(Ssl)] public static partial int SSL_write(IntPtr ssl, byte* buffer, int length);
    [LibraryImport(Ssl)] public static partial int SSL_has_pending(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial int SSL_get_error(IntPtr ssl, int result);
    [LibraryImport(Ssl)] public static partial int SSL_shutdown(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial IntPtr SSL_get_servername(IntPtr ssl, int type);
    [LibraryImport(Ssl)] public static partial IntPtr SSL_set_SSL_CTX(IntPtr ssl, IntPtr ctx);
    [LibraryImport(Ssl)] public static partial IntPtr SSL_get_SSL_CTX(IntPtr ssl);
    [LibraryImport(Ssl)] public static partial void SSL_get0_alpn_selected(IntPtr ssl, byte** data, uint* length);
    [LibraryImport(Ssl)] public static partial int SSL_version(IntPtr ssl);

    [LibraryImport(Crypto)] public static partial IntPtr BIO_new_socket(int fd, int closeFlag);
    [LibraryImport(Crypto)] public static partial IntPtr BIO_new(IntPtr method);
    [LibraryImport(Crypto)] public static partial IntPtr BIO_s_mem();
    [LibraryImport(Crypto)] public static partial void BIO_free(IntPtr bio);
    [LibraryImport(Crypto)] public static partial int BIO_read(IntPtr bio, byte* buffer, int length);
    [LibraryImport(Crypto)] public static partial nuint BIO_ctrl_pending(IntPtr bio);
    [LibraryImport(Crypto)] public static partial IntPtr d2i_AutoPrivateKey(IntPtr type, byte** der, long length);
    [LibraryImport(Crypto)] public static partial void EVP_PKEY_free(IntPtr key);
    [LibraryImport(Crypto)] public static partial IntPtr d2i_X509(IntPtr type, byte** der, long length);
    [LibraryImport(Crypto)] public static partial void X509_free(IntPtr certificate);
    [LibraryImport(Crypto)] public static partial void ERR_clear_error();
    [LibraryImport(Crypto)] public static partial ulong ERR_get_error();
    [LibraryImport(Crypto)] public static partial void ERR_error_string_n(ulong error, byte* buffer, nuint length);

    /// <summary>The oldest error on this thread's OpenSSL queue as text (the queue is emptied), or <paramref name="fallback"/>.</summary>
    public static string TakeError(string fallback)
    {
        var error = ERR_get_error();
        ERR_clear_error();
        if (error == 0) return fallback;
        var text = stackalloc byte[256];
        ERR_error_string_n(error, text, 256);
        return Marshal.PtrToStringUTF8((IntPtr)text) ?? fallback;
    }
}
