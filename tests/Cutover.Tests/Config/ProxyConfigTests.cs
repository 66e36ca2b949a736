using System.Net;
using Cutover.Config;

namespace Cutover.Tests.Config;

/// <summary>The proxy section of issue 18: hosts, path_prefix, trusted_proxies, limits and tls, and each bad input's error.</summary>
public class ProxyConfigTests
{
    private const string File = "/srv/app/cutover.yml";

    private static string Yaml(string proxy) =>
        "app: shop\nstrategy: rolling\nroot: /srv/shop\nrun:\n  command: node server.js\nproxy:\n  listen: 0.0.0.0:80\n" +
        string.Join("", proxy.Split('\n').Where(l => l.Length > 0).Select(l => "  " + l + "\n"));

    private static ConfigError SingleError(string proxy)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Yaml(proxy), File));
        return Assert.Single(e.Errors);
    }

    [Fact]
    public void Reads_the_issue_example()
    {
        var proxy = ConfigLoader.Parse(Yaml("""
            hosts: [Shop.Example.com, "*.shop.example.com"]
            path_prefix: /api/
            trusted_proxies: [127.0.0.1/32, "::1/128", 10.1.2.3]
            max_request_body: 1G
            max_request_headers: 64K
            response_timeout: 60s
            activity_timeout: 2m
            tls:
              listen: 0.0.0.0:443
              cert: /etc/ssl/shop.pem
              key: /etc/ssl/shop.key
              redirect_http: true
              hsts: false
            """), File).SettingsOf<InstanceSettings>().Proxy;
        Assert.Equal(["shop.example.com", "*.shop.example.com"], proxy.Hosts);
        Assert.Equal("/api", proxy.PathPrefix);
        Assert.Equal([IPNetwork.Parse("127.0.0.1/32"), IPNetwork.Parse("::1/128"), IPNetwork.Parse("10.1.2.3/32")], proxy.TrustedProxies);
        Assert.Equal(1L << 30, proxy.MaxRequestBody);
        Assert.Equal(64 * 1024, proxy.MaxRequestHeaders);
        Assert.Equal(TimeSpan.FromSeconds(60), proxy.ResponseTimeout);
        Assert.Equal(TimeSpan.FromMinutes(2), proxy.ActivityTimeout);
        Assert.Equal(IPEndPoint.Parse("0.0.0.0:443"), proxy.Tls!.Listen);
        Assert.Equal("/etc/ssl/shop.pem", proxy.Tls.CertFile);
        Assert.Equal("/etc/ssl/shop.key", proxy.Tls.KeyFile);
        Assert.True(proxy.Tls.RedirectHttp);
        Assert.False(proxy.Tls.Hsts);
    }

    [Fact]
    public void Reads_tls_acme_with_lets_encrypt_production_as_the_default_directory()
    {
        var tls = ConfigLoader.Parse(Yaml("""
            hosts: [Shop.Example.com, www.example.com]
            tls:
              listen: 0.0.0.0:443
              acme: { email: ops@example.com }
            """), File).SettingsOf<InstanceSettings>().Proxy.Tls!;
        Assert.Null(tls.CertFile);
        Assert.Equal(new Uri("https://acme-v02.api.letsencrypt.org/directory"), tls.Acme!.Directory);
        Assert.Equal("ops@example.com", tls.Acme.Email);
        Assert.Null(tls.Acme.CaCertPath);

        var own = ConfigLoader.Parse(Yaml("""
            hosts: [shop.example.com]
            tls:
              listen: 0.0.0.0:443
              acme:
                directory: https://ca.internal:14000/dir
                ca_cert: /etc/hosts
            """), File).SettingsOf<InstanceSettings>().Proxy.Tls!.Acme!;
        Assert.Equal(new Uri("https://ca.internal:14000/dir"), own.Directory);
        Assert.Equal("/etc/hosts", own.CaCertPath);
        Assert.Null(own.Email);
    }

    [Fact]
    public void Defaults_keep_todays_proxy_one_catch_all_app_trusting_nobody_without_a_body_limit()
    {
        var proxy = ConfigLoader.Parse(Yaml(""), File).SettingsOf<InstanceSettings>().Proxy;
        Assert.Empty(proxy.Hosts);
        Assert.Equal("/", proxy.PathPrefix);
        Assert.Empty(proxy.TrustedProxies);
        Assert.Null(proxy.MaxRequestBody);
        Assert.Equal(32 * 1024, proxy.MaxRequestHeaders);
        Assert.Null(proxy.Tls);
    }

    [Theory]
    [InlineData("hosts: [https://shop.example.com]", "proxy.hosts", "is not a host name")]
    [InlineData("hosts: [shop.example.com:443]", "proxy.hosts", "is not a host name")]
    [InlineData("hosts: [\"*.com\"]", "proxy.hosts", "is not a host name")]
    [InlineData("hosts: [\"a.*.com\"]", "proxy.hosts", "is not a host name")]
    [InlineData("hosts: [a.com, A.com]", "proxy.hosts", "listed twice")]
    [InlineData("path_prefix: api", "proxy.path_prefix", "is not a path prefix")]
    [InlineData("path_prefix: /a?b", "proxy.path_prefix", "is not a path prefix")]
    [InlineData("trusted_proxies: [10.0.0.0/33]", "proxy.trusted_proxies", "is not an address or CIDR")]
    [InlineData("trusted_proxies: [localhost]", "proxy.trusted_proxies", "is not an address or CIDR")]
    [InlineData("max_request_body: 0", "proxy.max_request_body", "at least 1 byte")]
    [InlineData("max_request_headers: 100", "proxy.max_request_headers", "between 1K and 256K")]
    [InlineData("max_request_headers: 1M", "proxy.max_request_headers", "between 1K and 256K")]
    [InlineData("response_timeout: 10ms", "proxy.response_timeout", "at least")]
    [InlineData("activity_timeout: 10ms", "proxy.activity_timeout", "at least")]
    [InlineData("activity_timeout: forever", "proxy.activity_timeout", "forever")]
    [InlineData("activity_timeout: 25h", "proxy.activity_timeout", "at most 24h")]
    [InlineData("tls: { listen: 0.0.0.0:443 }", "proxy.tls.cert", "tls needs cert and key")]
    [InlineData("tls: { listen: 0.0.0.0:443, cert: /a.pem }", "proxy.tls.key", "cert and key go together")]
    [InlineData("tls: { listen: 0.0.0.0:80, cert: /a.pem, key: /a.key }", "proxy.tls.listen", "is proxy.listen already")]
    [InlineData("tls: { listen: 443, cert: /a.pem, key: /a.key }", "proxy.tls.listen", "is not an address and port")]
    [InlineData("tls: { listen: 0.0.0.0:443, cert: certs/shop.pem, key: /a.key }", "proxy.tls.cert", "is relative; give the absolute path")]
    [InlineData("tls: { listen: 0.0.0.0:443 }", "proxy.tls.cert", "or acme")]
    [InlineData("hosts: [a.com]\ntls: { listen: 0.0.0.0:443, cert: /a.pem, key: /a.key, acme: { email: a@b.c } }", "proxy.tls.acme", "either cert and key (PEM files) or acme, not both")]
    [InlineData("tls: { listen: 0.0.0.0:443, acme: { email: a@b.c } }", "proxy.tls", "list them")]
    [InlineData("hosts: [a.com]\ntls: { listen: 0.0.0.0:443, acme: yes }", "proxy.tls.acme", "acme is a mapping")]
    [InlineData("hosts: [a.com, \"*.a.com\"]\ntls: { listen: 0.0.0.0:443, acme: { email: a@b.c } }", "proxy.hosts", "http-01 challenge, which cannot validate wildcards")]
    [InlineData("hosts: [a.com]\ntls: { listen: 0.0.0.0:443, acme: { email: nobody } }", "proxy.tls.acme.email", "is not an email address")]
    [InlineData("hosts: [a.com]\ntls: { listen: 0.0.0.0:443, acme: { directory: http://ca.test/dir } }", "proxy.tls.acme.directory", "is not the https:// URL of an ACME directory")]
    [InlineData("hosts: [a.com]\ntls: { listen: 0.0.0.0:443, acme: { ca_cert: ca.pem } }", "proxy.tls.acme.ca_cert", "is relative")]
    [InlineData("hosts: [a.com]\ntls: { listen: 0.0.0.0:443, acme: { ca_cert: /nonexistent/ca.pem } }", "proxy.tls.acme.ca_cert", "does not exist")]
    [InlineData("hosts: [a.com]\ntls: { listen: 0.0.0.0:443, acme: { email: a@b.c, account: x } }", "proxy.tls.acme.account", "unknown key")]
    [InlineData("tls: { listen: 0.0.0.0:443, cert: /a.pem, key: /a.key, hsts: yes }", "proxy.tls.hsts", "is not one of true | false")]
    [InlineData("tls: { listen: 0.0.0.0:443, cert: /a.pem, key: /a.key, redirect: true }", "proxy.tls.redirect", "unknown key")]
    public void Bad_input_is_one_clear_error_at_the_key(string proxy, string key, string message)
    {
        var error = SingleError(proxy);
        Assert.Equal(key, error.Key);
        Assert.Contains(message, error.Message);
    }
}
