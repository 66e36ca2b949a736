using System.Text.Json.Nodes;

namespace Cutover.Acme;

/// <summary>The three directory entries Cutover uses (RFC 8555 7.1.1).</summary>
public sealed record AcmeDirectory(Uri NewNonce, Uri NewAccount, Uri NewOrder);

/// <summary>An order (RFC 8555 7.1.3). Status: pending, ready, processing, valid, invalid.</summary>
public sealed record AcmeOrder(Uri Url, string Status, IReadOnlyList<Uri> Authorizations, Uri Finalize, Uri? Certificate, string? Error);

/// <summary>An authorization (RFC 8555 7.1.4) for one identifier. Status: pending, valid, invalid, deactivated, expired, revoked.</summary>
public sealed record AcmeAuthorization(Uri Url, string Status, string Identifier, IReadOnlyList<AcmeChallenge> Challenges);

/// <summary>One challenge of an authorization (RFC 8555 7.1.5).</summary>
public sealed record AcmeChallenge(string Type, Uri Url, string Token, string Status, string? Error);

/// <summary>Reads the server's JSON into the records above; a missing field is the server's fault and says so.</summary>
internal static class AcmeResources
{
    public static AcmeDirectory Directory(JsonNode json, Uri url) => new(
        Url(json, "newNonce", url), Url(json, "newAccount", url), Url(json, "newOrder", url));

    public static AcmeOrder Order(JsonNode json, Uri url) => new(
        url,
        Text(json, "status", url),
        (json["authorizations"] as JsonArray ?? throw Missing("authorizations", url))
            .Select(a => new Uri(a?.GetValue<string>() ?? throw Missing("authorizations", url))).ToList(),
        Url(json, "finalize", url),
        json["certificate"]?.GetValue<string>() is { } certificate ? new Uri(certificate) : null,
        Problem(json["error"]));

    public static AcmeAuthorization Authorization(JsonNode json, Uri url) => new(
        url,
        Text(json, "status", url),
        json["identifier"]?["value"]?.GetValue<string>() ?? throw Missing("identifier", url),
        (json["challenges"] as JsonArray ?? []).Where(c => c is not null).Select(c => new AcmeChallenge(
            Text(c!, "type", url),
            Url(c!, "url", url),
            c!["token"]?.GetValue<string>() ?? "",
            Text(c!, "status", url),
            Problem(c!["error"]))).ToList());

    /// <summary>A problem document embedded in an order or challenge, as one line.</summary>
    public static string? Problem(JsonNode? problem) => problem is null
        ? null
        : $"{problem["type"]?.GetValue<string>() ?? "unknown problem"}: {problem["detail"]?.GetValue<string>() ?? ""}".TrimEnd(' ', ':');

    private static string Text(JsonNode json, string name, Uri url) => json[name]?.GetValue<string>() ?? throw Missing(name, url);

    private static Uri Url(JsonNode json, string name, Uri url) => new(Text(json, name, url));

    private static AcmeException Missing(string name, Uri url) => new($"the ACME server's answer from {url} has no \"{name}\"");
}
