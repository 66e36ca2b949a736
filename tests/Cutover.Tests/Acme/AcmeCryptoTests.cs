using System.Buffers.Text;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using Cutover.Acme;

namespace Cutover.Tests.Acme;

/// <summary>The byte-exact parts of ACME that a server only reports as "malformed": thumbprints, JWS, CSR, tokens.</summary>
public sealed class AcmeCryptoTests
{
    [Fact]
    public void Thumbprint_matches_the_RFC_7638_example()
    {
        // RFC 7638 section 3.1: the RSA key of RFC 7517 appendix A.1 and its thumbprint.
        const string n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        // Given out of order on purpose: the canonical form sorts them.
        KeyValuePair<string, string>[] members = [new("n", n), new("kty", "RSA"), new("e", "AQAB")];

        Assert.Equal("{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"" + n + "\"}", JwkThumbprint.Canonical(members));
        Assert.Equal("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", JwkThumbprint.Of(members));
    }

    [Fact]
    public void Account_key_jwk_is_canonical_P256_and_key_authorization_is_token_dot_thumbprint()
    {
        using var key = AccountKey.Create();
        var jwk = JsonNode.Parse(key.Jwk)!.AsObject();

        Assert.Equal(["crv", "kty", "x", "y"], jwk.Select(m => m.Key));
        Assert.Equal("P-256", (string?)jwk["crv"]);
        Assert.Equal("EC", (string?)jwk["kty"]);
        Assert.Equal(32, Base64Url.DecodeFromChars(((string)jwk["x"]!).AsSpan()).Length);
        Assert.DoesNotContain(" ", key.Jwk);
        Assert.DoesNotContain("=", key.Jwk);
        Assert.Equal(Base64Url.EncodeToString(SHA256.HashData(Encoding.UTF8.GetBytes(key.Jwk))), key.Thumbprint);
        Assert.Equal(43, key.Thumbprint.Length); // 32 bytes, unpadded
        Assert.Equal("tok-en_1." + key.Thumbprint, key.KeyAuthorization("tok-en_1"));

        using var reloaded = AccountKey.FromPem(key.ExportPem());
        Assert.Equal(key.Thumbprint, reloaded.Thumbprint);
    }

    [Fact]
    public void Account_key_of_another_curve_is_refused()
    {
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);
        var error = Assert.Throws<CryptographicException>(() => AccountKey.FromPem(p384.ExportPkcs8PrivateKeyPem()));
        Assert.Contains("P-256", error.Message);
    }

    [Fact]
    public void Jws_is_flattened_ES256_with_a_64_byte_r_s_signature_and_jwk_or_kid()
    {
        using var key = AccountKey.Create();
        var url = new Uri("https://acme.test/new-acct");

        var withJwk = JsonNode.Parse(Jws.Sign(key, url, "nonce-1", null, new JsonObject { ["termsOfServiceAgreed"] = true }))!.AsObject();
        Assert.Equal(["protected", "payload", "signature"], withJwk.Select(m => m.Key));
        var header = Decode((string)withJwk["protected"]!);
        Assert.Equal("ES256", (string?)header["alg"]);
        Assert.Equal("nonce-1", (string?)header["nonce"]);
        Assert.Equal(url.AbsoluteUri, (string?)header["url"]);
        Assert.Equal(key.Jwk, header["jwk"]!.ToJsonString());
        Assert.Null(header["kid"]);
        Assert.True((bool)Decode((string)withJwk["payload"]!)["termsOfServiceAgreed"]!);

        var signature = Base64Url.DecodeFromChars(((string)withJwk["signature"]!).AsSpan());
        Assert.Equal(64, signature.Length); // r||s, not DER (which is 70-72 bytes and starts with 0x30)
        Assert.True(key.Verify(Encoding.ASCII.GetBytes($"{withJwk["protected"]}.{withJwk["payload"]}"), signature));

        var account = new Uri("https://acme.test/acct/7");
        var postAsGet = JsonNode.Parse(Jws.Sign(key, url, "nonce-2", account, null))!.AsObject();
        Assert.Equal("", (string?)postAsGet["payload"]);
        var kidHeader = Decode((string)postAsGet["protected"]!);
        Assert.Equal(account.AbsoluteUri, (string?)kidHeader["kid"]);
        Assert.Null(kidHeader["jwk"]);
    }

    [Fact]
    public void Csr_names_every_host_as_a_SAN_and_is_signed_by_the_certificate_key()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var der = AcmeIssuer.SigningRequest(["app.cutover.test", "www.cutover.test"], key);

        var request = CertificateRequest.LoadSigningRequest(der, HashAlgorithmName.SHA256, CertificateRequestLoadOptions.UnsafeLoadCertificateExtensions);
        Assert.Equal("CN=app.cutover.test", request.SubjectName.Name);
        var san = new X509SubjectAlternativeNameExtension(request.CertificateExtensions.Single(e => e.Oid?.Value == "2.5.29.17").RawData);
        Assert.Equal(["app.cutover.test", "www.cutover.test"], san.EnumerateDnsNames());
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), request.PublicKey.ExportSubjectPublicKeyInfo());
    }

    [Fact]
    public void Challenge_answers_exist_only_while_served_and_tokens_must_be_base64url()
    {
        var challenges = new Http01Challenges();
        using (challenges.Serve("abc_-9", "abc_-9.thumb"))
        {
            Assert.True(challenges.TryAnswer("/.well-known/acme-challenge/abc_-9", out var body));
            Assert.Equal("abc_-9.thumb", body);
            Assert.False(challenges.TryAnswer("/.well-known/acme-challenge/other", out _));
            Assert.False(challenges.TryAnswer("/abc_-9", out _));
        }
        Assert.False(challenges.TryAnswer("/.well-known/acme-challenge/abc_-9", out _));
        Assert.Equal(0, challenges.Count);

        var error = Assert.Throws<AcmeException>(() => challenges.Serve("../../etc", "x"));
        Assert.Contains("not base64url", error.Message);
    }

    [Theory]
    [InlineData("http://acme.test/directory", null, "an ACME directory is an https:// URL")]
    [InlineData("https://acme.test/directory", "ops", "not an email address")]
    [InlineData("https://acme.test/directory", "ops@acme.test, other@acme.test", "not an email address")]
    [InlineData("https://acme.test/directory", "ops@localhost", "not an email address")]
    public void Options_that_cannot_work_are_refused_as_bad_input(string directory, string? email, string expected)
    {
        using var key = AccountKey.Create();
        var error = Assert.Throws<InputException>(() => new AcmeClient(new AcmeOptions { Directory = new Uri(directory), Email = email }, key));
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void A_ca_cert_that_is_not_a_PEM_certificate_is_refused_naming_the_file()
    {
        using var dir = new Cutover.Tests.Support.TempDir();
        var path = dir.Combine("ca.pem");
        File.WriteAllText(path, "not a certificate");
        using var key = AccountKey.Create();

        var error = Assert.Throws<InputException>(() => new AcmeClient(new AcmeOptions { CaCertPath = path }, key));

        Assert.StartsWith($"proxy.tls.acme.ca_cert {path}: not a readable PEM certificate", error.Message);
        Assert.Throws<InputException>(() => new AcmeClient(new AcmeOptions { CaCertPath = dir.Combine("missing.pem") }, key));
    }

    private static JsonObject Decode(string part) =>
        JsonNode.Parse(Encoding.UTF8.GetString(Base64Url.DecodeFromChars(part.AsSpan())))!.AsObject();
}
