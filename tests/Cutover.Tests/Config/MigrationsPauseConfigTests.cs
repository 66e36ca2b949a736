using Cutover.Config;

namespace Cutover.Tests.Config;

/// <summary>migrations.pause: read for the strategies whose traffic passes through Cutover's proxy, refused at its line for the others.</summary>
public class MigrationsPauseConfigTests
{
    private const string File = "/srv/app/cutover.yml";
    private const string Migrations = "migrations:\n  dir: db\n  pause: true\n";

    [Theory]
    [InlineData("strategy: rolling\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\n")]
    [InlineData("strategy: blue-green\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\n")]
    public void Rolling_and_builtin_blue_green_take_it_with_a_30_second_backstop(string strategy)
    {
        var config = ConfigLoader.Parse("app: shop\nroot: /srv/shop\n" + strategy + Migrations, File).Migrations!;
        Assert.True(config.Pause);
        Assert.Equal(TimeSpan.FromSeconds(30), config.PauseTimeout);
        var timed = ConfigLoader.Parse("app: shop\nroot: /srv/shop\n" + strategy + Migrations + "  pause_timeout: 45s\n", File).Migrations!;
        Assert.Equal(TimeSpan.FromSeconds(45), timed.PauseTimeout);
    }

    [Fact]
    public void It_is_off_unless_asked()
    {
        var config = ConfigLoader.Parse("app: shop\nroot: /srv/shop\nmigrations:\n  dir: db\n", File).Migrations!;
        Assert.False(config.Pause);
    }

    [Theory]
    [InlineData("", "strategy: symlink serves through your web server")]
    [InlineData("strategy: swarm\nswarm:\n  service: a\n  image: a:1\n", "strategy: swarm routes through Docker's ingress")]
    [InlineData("strategy: blue-green\nrouter: nginx\nnginx:\n  upstream_file: /etc/nginx/up.conf\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\n", "router: nginx routes through nginx")]
    [InlineData("strategy: rolling\nrouter: haproxy\nhaproxy:\n  socket: /run/haproxy/admin.sock\n  backend: app\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\n", "router: haproxy routes through HAProxy")]
    [InlineData("strategy: blue-green\nrouter: haproxy\nhaproxy:\n  socket: /run/haproxy/admin.sock\n  backend: app\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\n", "router: haproxy routes through HAProxy")]
    public void Strategies_whose_traffic_bypasses_the_proxy_refuse_it_at_its_line(string strategy, string why)
    {
        var yaml = "app: shop\nroot: /srv/shop\n" + strategy + Migrations;
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, File));
        var error = Assert.Single(e.Errors);
        Assert.Equal("migrations.pause", error.Key);
        Assert.Contains("needs traffic through Cutover's proxy", error.Message);
        Assert.Contains(why, error.Message);
        Assert.Equal(yaml.Split('\n').ToList().FindIndex(l => l.Contains("pause: true")) + 1, error.Line);
    }

    [Theory]
    [InlineData("  pause: yes please\n", "migrations.pause", "is not one of true | false")]
    [InlineData("  pause: true\n  pause_timeout: 11m\n", "migrations.pause_timeout", "at most 10m")]
    [InlineData("  pause: true\n  pause_timeout: 0s\n", "migrations.pause_timeout", "must be at least 1s")]
    [InlineData("  pause_timeout: 5s\n", "migrations.pause_timeout", "read only with pause: true")]
    public void Mistakes_are_refused_with_the_key(string lines, string key, string message)
    {
        var yaml = "app: shop\nroot: /srv/shop\nstrategy: rolling\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\nmigrations:\n  dir: db\n" + lines;
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, File));
        var error = Assert.Single(e.Errors);
        Assert.Equal(key, error.Key);
        Assert.Contains(message, error.Message);
    }
}
