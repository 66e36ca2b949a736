// Docker.DotNet's models make every field nullable; a missing one here fails the test anyway.
#nullable disable warnings
using Cutover.Config;
using Cutover.Swarm;
using Docker.DotNet.Models;

namespace Cutover.Tests.Swarm;

public class SwarmSpecBuilderTests
{
    private static CutoverConfig Config() => ConfigLoader.Parse("""
        app: shop
        strategy: swarm
        swarm:
          service: shop-web
          image: shop:1
          replicas: 3
          command: ["httpd", "-f"]
          env: { MODE: prod }
          update: { parallelism: 2, delay: 3s, order: start-first, failure_action: rollback, monitor: 20s, max_failure_ratio: 0.25 }
          rollback: { parallelism: 0, order: stop-first }
          healthcheck: { test: ["CMD", "test", "-e", "/www/healthy"], interval: 2s, timeout: 1s, retries: 4, start_period: 5s }
          stop_grace_period: 7s
        """, "/srv/shop/cutover.yml");

    [Fact]
    public void Builds_the_service_spec_from_the_config_with_cutover_labels_on_service_and_tasks()
    {
        var spec = SwarmSpecBuilder.Build(Config(), "shop:2", "20260101_120000");
        Assert.Equal("shop-web", spec.Name);
        Assert.Equal(("shop", "20260101_120000"), (spec.Labels["cutover.app"], spec.Labels["cutover.release"]));
        var container = spec.TaskTemplate.ContainerSpec;
        Assert.Equal("shop:2", container.Image);
        Assert.Equal("20260101_120000", container.Labels["cutover.release"]);
        // command replaces the image's CMD, not its ENTRYPOINT, as compose's `command` does.
        Assert.Equal(["httpd", "-f"], container.Args);
        Assert.Null(container.Command);
        Assert.Equal(["MODE=prod"], container.Env);
        Assert.True(container.Init);
        Assert.Equal(TimeSpan.FromSeconds(7), container.StopGracePeriod);
        Assert.Equal(["CMD", "test", "-e", "/www/healthy"], container.Healthcheck.Test);
        Assert.Equal((TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(1), 4L, TimeSpan.FromSeconds(5)),
            (container.Healthcheck.Interval!.Value, container.Healthcheck.Timeout!.Value, container.Healthcheck.Retries!.Value, container.Healthcheck.StartPeriod!.Value));
        Assert.Equal(3UL, spec.Mode.Replicated.Replicas);
        Assert.Equal((2UL, TimeSpan.FromSeconds(3), "start-first", "rollback", TimeSpan.FromSeconds(20), 0.25f),
            (spec.UpdateConfig.Parallelism, spec.UpdateConfig.Delay!.Value, spec.UpdateConfig.Order, spec.UpdateConfig.FailureAction, spec.UpdateConfig.Monitor!.Value, spec.UpdateConfig.MaxFailureRatio));
        Assert.Equal((0UL, "stop-first", "pause"), (spec.RollbackConfig.Parallelism, spec.RollbackConfig.Order, spec.RollbackConfig.FailureAction));
    }

    [Fact]
    public void An_update_keeps_what_cutover_does_not_manage_and_a_rollback_uses_the_rollback_config()
    {
        var live = SwarmSpecBuilder.Build(Config(), "shop:1", "20260101_120000");
        live.TaskTemplate.Placement = new Placement { Constraints = ["node.role==worker"] };
        live.Labels["team"] = "web";
        var config = Config();
        var spec = SwarmSpecBuilder.Build(config, "shop:1", "20260101_130000", live, updateWith: config.SettingsOf<SwarmSettings>().Swarm.Rollback);
        Assert.Equal(["node.role==worker"], spec.TaskTemplate.Placement.Constraints);
        Assert.Equal("web", spec.Labels["team"]);
        Assert.Equal("20260101_130000", spec.TaskTemplate.ContainerSpec.Labels["cutover.release"]);
        Assert.Equal((0UL, "stop-first"), (spec.UpdateConfig.Parallelism, spec.UpdateConfig.Order));
    }

    [Fact]
    public void Compose_healthcheck_start_interval_reaches_docker_and_disable_switches_the_images_healthcheck_off()
    {
        static CutoverConfig With(string healthcheck) => ConfigLoader.Parse(
            $"app: shop\nstrategy: swarm\nswarm: {{ service: shop-web, image: shop:1, healthcheck: {healthcheck} }}\n", "/srv/shop/cutover.yml");

        var probed = SwarmSpecBuilder.Build(With("{ test: [\"CMD\", \"true\"], start_period: 30s, start_interval: 1s }"), "shop:2", "r").TaskTemplate.ContainerSpec.Healthcheck;
        Assert.Equal((TimeSpan.FromSeconds(30), TimeSpan.FromSeconds(1)), (probed.StartPeriod, probed.StartInterval));

        var off = SwarmSpecBuilder.Build(With("{ disable: true }"), "shop:2", "r").TaskTemplate.ContainerSpec.Healthcheck;
        Assert.Equal(["NONE"], off.Test);

        var both = Assert.Throws<ConfigException>(() => With("{ disable: true, test: [\"CMD\", \"true\"] }"));
        Assert.Contains("disable: true switches the healthcheck off", Assert.Single(both.Errors).ToString());
        var zero = Assert.Throws<ConfigException>(() => With("{ test: [\"CMD\", \"true\"], start_interval: 0s }"));
        Assert.Contains("start_interval", Assert.Single(zero.Errors).ToString());
        var notBool = Assert.Throws<ConfigException>(() => With("{ test: [\"CMD\", \"true\"], disable: maybe }"));
        Assert.Contains("disable", Assert.Single(notBool.Errors).ToString());
    }
}
