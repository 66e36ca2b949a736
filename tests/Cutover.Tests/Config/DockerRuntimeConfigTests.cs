using Cutover.Config;

namespace Cutover.Tests.Config;

public class DockerRuntimeConfigTests
{
    private const string File = "/srv/app/cutover.yml";

    private const string Valid = """
        app: web
        strategy: rolling
        root: /srv/web
        runtime: docker
        docker:
          host: unix:///var/run/docker.sock
          image: myapp:2.0
          port: 3000
          network: cutover
          env: { NODE_ENV: production }
          volumes: ["/srv/uploads:/app/uploads"]
          healthcheck: { test: ["CMD", "curl", "-f", "http://localhost:3000/health"], interval: 10s, timeout: 5s, retries: 3, start_period: 30s }
        run: { instances: 3, stop_signal: SIGTERM, kill_timeout: 10s }
        proxy: { listen: 127.0.0.1:3000 }
        """;

    [Fact]
    public void The_documented_docker_section_reads_as_written()
    {
        var config = ConfigLoader.Parse(Valid, File);
        var settings = config.SettingsOf<RollingSettings>();
        var docker = Assert.IsType<DockerConfig>(settings.Runtime);
        Assert.Equal("myapp:2.0", docker.Image);
        Assert.Equal(3000, docker.Port);
        Assert.Equal("production", docker.Env["NODE_ENV"]);
        Assert.Equal(["/srv/uploads:/app/uploads"], docker.Volumes);
        Assert.Equal(["CMD", "curl", "-f", "http://localhost:3000/health"], docker.Healthcheck!.Test);
        Assert.Equal(TimeSpan.FromSeconds(30), docker.Healthcheck.StartPeriod);
        Assert.Equal(3, settings.Run.Instances);
        Assert.Equal(15, settings.Run.StopSignal);
    }

    [Fact]
    public void Containers_default_to_sigterm_and_ten_seconds_like_docker()
    {
        var config = ConfigLoader.Parse(Valid.Replace("run: { instances: 3, stop_signal: SIGTERM, kill_timeout: 10s }", "run: { instances: 2 }"), File);
        var run = config.SettingsOf<RollingSettings>().Run;
        Assert.Equal("SIGTERM", run.StopSignalName);
        Assert.Equal(TimeSpan.FromSeconds(10), run.KillTimeout);
    }

    [Theory]
    [InlineData("  port: 3000\n", "", "docker.port", "'port' is required")]
    [InlineData("run: { instances: 3, stop_signal: SIGTERM, kill_timeout: 10s }", "run: { instances: 3, ready: message }", "run.ready", "with runtime: docker, ready is http or tcp")]
    [InlineData("run: { instances: 3, stop_signal: SIGTERM, kill_timeout: 10s }", "run: { instances: 3, command: node server.js }", "run.command", "the image's own command runs")]
    [InlineData("host: unix:///var/run/docker.sock", "host: /var/run/docker.sock", "docker.host", "is not a Docker host")]
    [InlineData("volumes: [\"/srv/uploads:/app/uploads\"]", "volumes: [\"/srv/uploads\"]", "docker.volumes", "is not HOST:CONTAINER")]
    [InlineData("test: [\"CMD\", \"curl\"", "test: [\"curl\"", "docker.healthcheck.test", "starts with CMD, CMD-SHELL or NONE")]
    public void Mistakes_name_the_key_and_line(string from, string to, string key, string message)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Valid.Replace(from, to), File));
        var error = Assert.Single(e.Errors, x => x.Key == key);
        Assert.Contains(message, error.Message);
        Assert.Equal(File, error.File);
        Assert.True(error.Line > 1);
    }

    [Fact]
    public void Docker_without_runtime_docker_is_an_error()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(Valid.Replace("runtime: docker\n", ""), File));
        Assert.Contains(e.Errors, x => x.Key == "docker" && x.Message.Contains("only with runtime: docker"));
    }
}
