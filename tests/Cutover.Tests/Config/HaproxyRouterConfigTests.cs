using Cutover.Config;

namespace Cutover.Tests.Config;

/// <summary>`router: haproxy` and `haproxy: { socket, backend }` for rolling and blue-green, and what is refused at its line.</summary>
public class HaproxyRouterConfigTests
{
    private const string File = "/srv/app/cutover.yml";

    private static string Yaml(string strategy, string router) =>
        $"app: a\nstrategy: {strategy}\nroot: /srv/a\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\n{router}";

    private static ConfigError SingleError(string yaml) =>
        Assert.Single(Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, File)).Errors);

    [Fact]
    public void Rolling_and_blue_green_read_the_socket_relative_to_the_file_and_the_backend()
    {
        var router = "router: haproxy\nhaproxy:\n  socket: run/admin.sock\n  backend: app\n";
        var rolling = ConfigLoader.Parse(Yaml("rolling", router), File).SettingsOf<RollingSettings>().Rolling.Haproxy;
        Assert.Equal(new HaproxyRouterConfig { Socket = "/srv/app/run/admin.sock", Backend = "app" }, rolling);
        var blueGreen = ConfigLoader.Parse(Yaml("blue-green", router), File).SettingsOf<BlueGreenSettings>().BlueGreen;
        Assert.Equal("haproxy", blueGreen.Router);
        Assert.Equal(new HaproxyRouterConfig { Socket = "/srv/app/run/admin.sock", Backend = "app" }, blueGreen.Haproxy);
        Assert.Null(ConfigLoader.Parse(Yaml("rolling", ""), File).SettingsOf<RollingSettings>().Rolling.Haproxy);
    }

    [Theory]
    [InlineData("rolling", "router: haproxy\n", "router", "router: haproxy needs a 'haproxy' section with socket and backend")]
    [InlineData("blue-green", "router: haproxy\n", "router", "router: haproxy needs a 'haproxy' section with socket and backend")]
    [InlineData("rolling", "haproxy:\n  socket: /s\n  backend: app\n", "haproxy", "the 'haproxy' section is read only with router: haproxy (router is builtin)")]
    [InlineData("blue-green", "router: builtin\nhaproxy:\n  socket: /s\n  backend: app\n", "haproxy", "the 'haproxy' section is read only with router: haproxy (router is builtin)")]
    [InlineData("rolling", "router: nginx\n", "router", "router: nginx is for strategy: blue-green; strategy: rolling takes builtin or haproxy")]
    [InlineData("rolling", "router: haproxy\nhaproxy:\n  backend: app\n", "haproxy.socket", "")]
    [InlineData("rolling", "router: haproxy\nhaproxy:\n  socket: /s\n", "haproxy.backend", "")]
    [InlineData("rolling", "router: haproxy\nhaproxy:\n  socket: /s\n  backend: app x\n", "haproxy.backend", "'app x' is not an HAProxy backend name")]
    [InlineData("blue-green", "router: haproxy\nhaproxy:\n  socket: /s\n  backend: app\n  reload: systemctl reload haproxy\n", "haproxy.reload", "")]
    public void Refusals_name_the_key(string strategy, string router, string key, string message)
    {
        var error = SingleError(Yaml(strategy, router));
        Assert.Equal(key, error.Key);
        Assert.Contains(message, error.Message);
    }
}
