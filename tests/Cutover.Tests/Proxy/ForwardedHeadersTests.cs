using System.Net;
using Cutover.Proxy;
using Microsoft.AspNetCore.Http;

namespace Cutover.Tests.Proxy;

/// <summary>The scheme and trust rules on their own; FrontDoorTests drives the same through a real agent.</summary>
public class ForwardedHeadersTests
{
    private static readonly IReadOnlyList<IPNetwork> Loopback = [IPNetwork.Parse("127.0.0.0/8"), IPNetwork.Parse("::1/128")];

    [Theory]
    [InlineData(true, "https", "https")]
    [InlineData(true, "HTTPS", "https")]
    [InlineData(true, "http", "http")]
    [InlineData(true, "http, https", "https")] // the nearest hop's word counts
    [InlineData(true, "javascript", "http")] // not a scheme: never passed on
    [InlineData(true, "", "http")]
    [InlineData(false, "https", "http")] // an untrusted client cannot claim https
    public void The_scheme_is_a_trusted_peers_http_or_https_and_http_otherwise(bool trusted, string sent, string expected)
    {
        var context = new DefaultHttpContext();
        if (sent.Length > 0) context.Request.Headers["X-Forwarded-Proto"] = sent;
        Assert.Equal(expected, ForwardedHeaders.ClientScheme(context, trusted));
    }

    [Theory]
    [InlineData("127.0.0.1", true)]
    [InlineData("::ffff:127.0.0.1", true)] // a dual-stack listener's view of an IPv4 peer
    [InlineData("::1", true)]
    [InlineData("10.0.0.5", false)]
    [InlineData("::ffff:10.0.0.5", false)]
    public void A_peer_is_trusted_only_inside_trusted_proxies(string peer, bool expected)
    {
        Assert.Equal(expected, ForwardedHeaders.IsTrusted(IPAddress.Parse(peer), Loopback));
        Assert.False(ForwardedHeaders.IsTrusted(IPAddress.Parse(peer), []));
    }
}
