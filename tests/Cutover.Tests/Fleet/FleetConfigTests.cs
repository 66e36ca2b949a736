using System.Security.Cryptography;
using System.Text;
using Cutover.Config;
using Cutover.Fleet;
using Cutover.Tests.Support;

namespace Cutover.Tests.Fleet;

/// <summary>hosts, ssh and fleet in cutover.yml; known_hosts matching; the per-host config a host runs with.</summary>
public class FleetConfigTests
{
    private const string File = "/srv/app/cutover.yml";

    [Fact]
    public void Reads_the_issue_example_with_every_host_form()
    {
        var config = ConfigLoader.Parse("""
            app: shop
            root: /srv/shop
            hosts:
              - web1.example.com
              - deploy@web2.example.com:2222
              - { host: 10.0.0.3, port: 22, user: deploy, root: /srv/other }
            ssh:
              user: deploy
              key: ~/.ssh/id_ed25519
              known_hosts: keys/known_hosts
              port: 2200
            fleet:
              parallel: 10
              batch: 25%
              wait: 2s
            """, File);
        var fleet = config.Fleet!;
        Assert.Equal(["web1.example.com", "deploy@web2.example.com:2222", "10.0.0.3:22"], fleet.Hosts.Select(h => h.Name));
        Assert.Equal(new FleetHost("web1.example.com", "web1.example.com", 2200, "deploy", "/srv/shop"), fleet.Hosts[0]);
        Assert.Equal(new FleetHost("deploy@web2.example.com:2222", "web2.example.com", 2222, "deploy", "/srv/shop"), fleet.Hosts[1]);
        Assert.Equal(new FleetHost("10.0.0.3:22", "10.0.0.3", 22, "deploy", "/srv/other"), fleet.Hosts[2]);
        Assert.Equal("/srv/app/keys/known_hosts", fleet.Ssh.KnownHosts);
        Assert.EndsWith("/.ssh/id_ed25519", fleet.Ssh.Key);
        Assert.Equal(10, fleet.Options.Parallel);
        Assert.Equal(1, fleet.Options.Batch.For(3));
        Assert.Equal(3, fleet.Options.Batch.For(10));
        Assert.Equal(TimeSpan.FromSeconds(2), fleet.Options.Wait);
    }

    [Fact]
    public void Without_hosts_the_config_is_local()
    {
        Assert.Null(ConfigLoader.Parse("app: shop\nroot: /srv/shop\n", File).Fleet);
    }

    [Theory]
    [InlineData("hosts:\n  - web1\n  - deploy@:22\n", "/srv/app/cutover.yml:5:5: hosts: 'deploy@:22' is not a host such as")]
    [InlineData("hosts:\n  - web1:99999\n", "/srv/app/cutover.yml:4:5: hosts: 'web1:99999': '99999' is not a port from 1 to 65535")]
    [InlineData("hosts:\n  - { host: web1, root: relative/dir }\n", "/srv/app/cutover.yml:4:25: hosts[0].root: a host's root is a path on that host and must be absolute")]
    [InlineData("hosts:\n  - { host: web1, rot: /x }\n", "/srv/app/cutover.yml:4:19: hosts[0].rot: unknown key in 'hosts[0]'; did you mean 'root'?")]
    [InlineData("hosts: [web1]\nfleet:\n  batch: 0\n", "/srv/app/cutover.yml:5:10: fleet.batch: '0' is neither a number of hosts (1 or more) nor a percentage such as 25%")]
    [InlineData("hosts: [web1]\nfleet:\n  batch: 150%\n", "/srv/app/cutover.yml:5:10: fleet.batch: '150%' is neither")]
    [InlineData("hosts: [web1, web1]\n", "/srv/app/cutover.yml:3:15: hosts: 'web1' is listed twice")]
    [InlineData("ssh:\n  user: deploy\n", "/srv/app/cutover.yml:4:3: ssh: 'ssh' only applies with 'hosts'")]
    [InlineData("hosts: [web1]\nssh:\n  knwon_hosts: x\n", "/srv/app/cutover.yml:5:3: ssh.knwon_hosts: unknown key in 'ssh'; did you mean 'known_hosts'?")]
    [InlineData("hosts:\n  - { host: web1, proxy_listen: 127.0.0.1:3000 }\n", "hosts[0].proxy_listen: not used by strategy: symlink (used by: rolling, blue-green)")]
    public void Every_mistake_names_file_line_and_key(string yaml, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("app: shop\nroot: /srv/shop\n" + yaml, File));
        Assert.Contains(e.Errors, x => x.ToString().Contains(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void With_hosts_the_root_must_be_absolute()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("app: shop\nroot: deploy\nhosts: [web1]\n", File));
        Assert.Equal("/srv/app/cutover.yml:2:7: root: with 'hosts', root is a path on each host and must be absolute, not 'deploy'", Assert.Single(e.Errors).ToString());
    }

    [Fact]
    public void Known_hosts_matches_plain_bracketed_and_hashed_entries_and_tells_a_changed_key_from_an_unknown_one()
    {
        using var dir = new TempDir();
        var key = RandomNumberGenerator.GetBytes(51);
        var other = RandomNumberGenerator.GetBytes(51);
        var salt = RandomNumberGenerator.GetBytes(20);
        var hashed = $"|1|{Convert.ToBase64String(salt)}|{Convert.ToBase64String(HMACSHA1.HashData(salt, Encoding.ASCII.GetBytes("[10.0.0.9]:2222")))}";
        var path = dir.Combine("known_hosts");
        System.IO.File.WriteAllText(path, $"""
            # comment
            web1,web1.example.com ssh-ed25519 {Convert.ToBase64String(key)}
            [web2]:2222 ssh-ed25519 {Convert.ToBase64String(key)}
            {hashed} ssh-ed25519 {Convert.ToBase64String(key)}
            *.internal ssh-ed25519 {Convert.ToBase64String(key)}
            """);
        var known = new KnownHosts(path);
        Assert.Equal(HostKeyVerdict.Known, known.Check("web1.example.com", 22, "ssh-ed25519", key));
        Assert.Equal(HostKeyVerdict.Known, known.Check("web2", 2222, "ssh-ed25519", key));
        Assert.Equal(HostKeyVerdict.Known, known.Check("10.0.0.9", 2222, "ssh-ed25519", key));
        Assert.Equal(HostKeyVerdict.Known, known.Check("db.internal", 22, "ssh-ed25519", key));
        Assert.Equal(HostKeyVerdict.Unknown, known.Check("web2", 22, "ssh-ed25519", key));
        Assert.Equal(HostKeyVerdict.Unknown, known.Check("web1", 22, "ssh-rsa", key));
        Assert.Equal(HostKeyVerdict.Changed, known.Check("web1", 22, "ssh-ed25519", other));
        Assert.Equal(HostKeyVerdict.Changed, known.Check("10.0.0.9", 2222, "ssh-ed25519", other));

        known.Add("web3", 2200, "ssh-ed25519", other);
        Assert.Equal(HostKeyVerdict.Known, known.Check("web3", 2200, "ssh-ed25519", other));
        Assert.EndsWith($"[web3]:2200 ssh-ed25519 {Convert.ToBase64String(other)}\n", System.IO.File.ReadAllText(path));
    }

    [Fact]
    public void A_hosts_config_has_no_fleet_keys_no_migrations_and_its_own_root_and_proxy_address()
    {
        using var dir = new TempDir();
        var file = dir.Combine("cutover.yml");
        System.IO.File.WriteAllText(file, """
            app: api
            strategy: rolling
            root: /srv/api
            hosts:
              - { host: web1, root: /data/api, proxy_listen: 127.0.0.1:3100 }
            ssh:
              user: deploy
            fleet:
              batch: 1
            migrations:
              dir: db
            run:
              command: node server.js
            proxy:
              listen: 0.0.0.0:3000
            """);
        var config = ConfigLoader.Load(file);
        var rendered = RemoteConfig.Render(config, config.Fleet!.Hosts[0]);
        var remote = ConfigLoader.Parse(rendered, "/home/deploy/.cutover/apps/api/cutover.yml");
        Assert.Null(remote.Fleet);
        Assert.Null(remote.Migrations);
        Assert.Equal("/data/api", remote.Root);
        var settings = remote.SettingsOf<RollingSettings>();
        Assert.Equal("127.0.0.1:3100", settings.Proxy.Listen.ToString());
        Assert.Equal("node server.js", settings.Run.Command);
    }
}
