using System.Buffers.Text;
using System.Text;
using System.Text.Json.Nodes;

namespace Cutover.Acme;

/// <summary>
/// Flattened JWS JSON serialization (RFC 7515 7.2.2) as ACME wants it (RFC 8555 6.2): ES256, the nonce and URL
/// in the protected header, and either the account's JWK (newAccount) or its URL as kid (everything after).
/// </summary>
public static class Jws
{
    /// <summary><paramref name="payload"/> null is POST-as-GET: the payload is the empty string, not "{}".</summary>
    public static string Sign(AccountKey key, Uri url, string nonce, Uri? accountUrl, JsonNode? payload)
    {
        var header = new JsonObject
        {
            ["alg"] = "ES256",
            ["nonce"] = nonce,
            ["url"] = url.AbsoluteUri,
        };
        if (accountUrl is null) header["jwk"] = JsonNode.Parse(key.Jwk);
        else header["kid"] = accountUrl.AbsoluteUri;

        var protectedPart = Base64Url.EncodeToString(Encoding.UTF8.GetBytes(header.ToJsonString()));
        var payloadPart = payload is null ? "" : Base64Url.EncodeToString(Encoding.UTF8.GetBytes(payload.ToJsonString()));
        var signature = key.Sign(Encoding.ASCII.GetBytes(protectedPart + "." + payloadPart));
        return new JsonObject
        {
            ["protected"] = protectedPart,
            ["payload"] = payloadPart,
            ["signature"] = Base64Url.EncodeToString(signature),
        }.ToJsonString();
    }
}
