using Cutover.Config;
using Cutover.Tests.Support;

namespace Cutover.Tests.Config;

public class SwarmConfigTests
{
    private const string File = "/srv/app/cutover.yml";

    [Fact]
    public void Reads_the_swarm_section_of_the_issue()
    {
        var config = ConfigLoader.Parse("""
            app: myapp
            strategy: swarm
            swarm:
              docker_host: unix:///var/run/docker.sock
              service: myapp
              image: myapp:2.0
              replicas: 3
              command: ["node", "server.js"]
              env: { NODE_ENV: production }
              update: { parallelism: 1, delay: 10s, order: start-first, failure_action: rollback, monitor: 30s, max_failure_ratio: 0 }
              rollback: { parallelism: 0, order: stop-first }
              healthcheck: { test: ["CMD", "curl", "-f", "http://localhost:3000/health"], interval: 10s, timeout: 5s, retries: 3, start_period: 30s }
              stop_grace_period: 20s
              task_deadline: 3m
            """, File);
        var swarm = config.SettingsOf<SwarmSettings>().Swarm;
        Assert.Same(Strategy.Swarm, config.Strategy);
        Assert.Equal("/srv/app/.cutover-swarm/myapp", config.Root);
        Assert.Equal(("unix:///var/run/docker.sock", "myapp", "myapp:2.0", 3), (swarm.DockerHost, swarm.Service, swarm.Image, swarm.Replicas));
        Assert.Equal(["node", "server.js"], swarm.Command!);
        Assert.Equal("production", swarm.Env["NODE_ENV"]);
        Assert.Equal(new SwarmUpdateConfig { Parallelism = 1, Delay = TimeSpan.FromSeconds(10), Order = "start-first", FailureAction = "rollback", Monitor = TimeSpan.FromSeconds(30) }, swarm.Update);
        Assert.Equal(new SwarmUpdateConfig { Parallelism = 0, Order = "stop-first", FailureAction = "pause" }, swarm.Rollback);
        Assert.Equal(["CMD", "curl", "-f", "http://localhost:3000/health"], swarm.Healthcheck!.Test);
        Assert.Equal((TimeSpan.FromSeconds(10), TimeSpan.FromSeconds(5), 3, TimeSpan.FromSeconds(30)),
            (swarm.Healthcheck.Interval, swarm.Healthcheck.Timeout, swarm.Healthcheck.Retries, swarm.Healthcheck.StartPeriod));
        Assert.Equal(TimeSpan.FromSeconds(20), swarm.StopGracePeriod);
        Assert.Equal(TimeSpan.FromMinutes(3), swarm.EffectiveTaskDeadline);
        Assert.True(swarm.Init);
        // monitor 30 s >= (10 s + 5 s) × 3 is not: 45 s. The issue's own example gets the third warning.
        Assert.Single(config.Warnings, w => w.Contains("shorter than the healthcheck", StringComparison.Ordinal));
    }

    [Fact]
    public void Without_task_deadline_Cutover_waits_the_healthchecks_time_to_decide_plus_monitor_plus_a_minute()
    {
        var swarm = ConfigLoader.Parse("""
            app: a
            strategy: swarm
            swarm: { service: a, image: a:1, healthcheck: { test: ["CMD", "true"], interval: 10s, timeout: 5s, retries: 3, start_period: 30s }, update: { monitor: 50s } }
            """, File).SettingsOf<SwarmSettings>().Swarm;
        Assert.Equal(TimeSpan.FromSeconds(30 + 45 + 50 + 60), swarm.EffectiveTaskDeadline);
    }

    [Fact]
    public void Reads_the_classic_guides_compose_file_as_written()
    {
        using var dir = new TempDir();
        System.IO.File.WriteAllText(dir.Combine("docker-compose.yml"), """
            version: "3.8"
            services:
              web:
                image: myapp:2.0
                command: node server.js --port "3000"
                ports:
                  - "3000:3000"
                environment:
                  - NODE_ENV=production
                networks: [backend]
                healthcheck:
                  test: ["CMD", "curl", "-f", "http://localhost:3000/health"]
                  interval: 10s
                  timeout: 5s
                  retries: 3
                  start_period: 30s
                stop_grace_period: 15s
                deploy:
                  replicas: 3
                  update_config:
                    parallelism: 1
                    delay: 10s
                    order: start-first
                    failure_action: rollback
                    monitor: 60s
                  rollback_config:
                    parallelism: 0
                    order: stop-first
            networks:
              backend: {}
            """);
        var config = ConfigLoader.Parse("""
            app: web
            strategy: swarm
            swarm:
              service: web
              compose: docker-compose.yml
            """, dir.Combine("cutover.yml"));
        var swarm = config.SettingsOf<SwarmSettings>().Swarm;
        Assert.Equal(("myapp:2.0", 3), (swarm.Image, swarm.Replicas));
        Assert.Equal(["node", "server.js", "--port", "3000"], swarm.Command!);
        Assert.Equal("production", swarm.Env["NODE_ENV"]);
        Assert.Equal([new SwarmPort(3000, 3000, "ingress")], swarm.Ports);
        Assert.Equal(["backend"], swarm.Networks);
        Assert.Equal(new SwarmUpdateConfig { Parallelism = 1, Delay = TimeSpan.FromSeconds(10), Order = "start-first", FailureAction = "rollback", Monitor = TimeSpan.FromSeconds(60) }, swarm.Update);
        // rollback_config keys the file leaves out take docker stack deploy's values: pause, 5 s monitor.
        Assert.Equal(new SwarmUpdateConfig { Parallelism = 0, Order = "stop-first", FailureAction = "pause", Monitor = TimeSpan.FromSeconds(5) }, swarm.Rollback);
        Assert.Equal(TimeSpan.FromSeconds(30), swarm.Healthcheck!.StartPeriod);
        Assert.Equal(TimeSpan.FromSeconds(15), swarm.StopGracePeriod);
        Assert.Empty(config.Warnings);
    }

    [Fact]
    public void Compose_keys_left_out_take_docker_stack_deploys_defaults_and_cutover_yml_overrides_key_by_key()
    {
        using var dir = new TempDir();
        System.IO.File.WriteAllText(dir.Combine("compose.yml"), """
            services:
              web:
                image: myapp:1
                deploy:
                  update_config: { delay: 5s }
                  rollback_config: { order: start-first }
            """);
        var swarm = ConfigLoader.Parse("""
            app: web
            strategy: swarm
            swarm:
              service: web
              compose: compose.yml
              image: myapp:2
              update: { monitor: 40s }
            """, dir.Combine("cutover.yml")).SettingsOf<SwarmSettings>().Swarm;
        Assert.Equal("myapp:2", swarm.Image);
        Assert.Equal(1, swarm.Replicas);
        // Swarm's own defaults, which compose leaves in place: parallelism 1 (docker/cli convertUpdateConfig), stop-first, pause.
        Assert.Equal(new SwarmUpdateConfig { Parallelism = 1, Delay = TimeSpan.FromSeconds(5), Order = "stop-first", FailureAction = "pause", Monitor = TimeSpan.FromSeconds(40) }, swarm.Update);
        Assert.Equal(new SwarmUpdateConfig { Parallelism = 1, Order = "start-first", FailureAction = "pause" }, swarm.Rollback);
    }

    [Fact]
    public void Warns_when_start_first_meets_a_host_mode_port()
    {
        using var dir = new TempDir();
        System.IO.File.WriteAllText(dir.Combine("compose.yml"), """
            services:
              web:
                image: myapp:1
                ports:
                  - { target: 3000, published: 8080, mode: host }
                healthcheck: { test: ["CMD", "true"], interval: 1s, timeout: 1s, retries: 1 }
            """);
        var config = ConfigLoader.Parse("""
            app: web
            strategy: swarm
            swarm: { service: web, compose: compose.yml, update: { order: start-first } }
            """, dir.Combine("cutover.yml"));
        Assert.Equal([new SwarmPort(8080, 3000, "host")], config.SettingsOf<SwarmSettings>().Swarm.Ports);
        var warning = Assert.Single(config.Warnings);
        Assert.Contains("swarm.update.order is start-first but port 8080 is published in host mode", warning);
        Assert.Contains("moby #36934", warning);
    }

    [Fact]
    public void Warns_when_there_is_no_healthcheck()
    {
        var config = ConfigLoader.Parse("app: a\nstrategy: swarm\nswarm: { service: a, image: a:1 }\n", File);
        var warning = Assert.Single(config.Warnings);
        Assert.Contains("no healthcheck", warning);
        Assert.Contains("moby #30321", warning);
    }

    [Fact]
    public void Warns_when_the_monitor_is_shorter_than_the_healthcheck_can_decide()
    {
        var config = ConfigLoader.Parse("""
            app: a
            strategy: swarm
            swarm:
              service: a
              image: a:1
              update: { monitor: 5s }
              healthcheck: { test: ["CMD", "true"], interval: 2s, timeout: 1s, retries: 3, start_period: 60s }
            """, File);
        var warning = Assert.Single(config.Warnings);
        Assert.Contains("swarm.update.monitor (5s) is shorter than the healthcheck needs to call a running task unhealthy (9s", warning);

        // start_period ends with the first healthy probe, so it does not lengthen what the monitor must cover.
        var enough = ConfigLoader.Parse("""
            app: a
            strategy: swarm
            swarm:
              service: a
              image: a:1
              update: { monitor: 9s }
              healthcheck: { test: ["CMD", "true"], interval: 2s, timeout: 1s, retries: 3, start_period: 60s }
            """, File);
        Assert.Empty(enough.Warnings);
    }

    [Fact]
    public void Networks_in_cutover_yml_replace_the_compose_files()
    {
        var swarm = ConfigLoader.Parse("app: a\nstrategy: swarm\nswarm: { service: a, image: a:1, networks: [front, back] }\n", File).SettingsOf<SwarmSettings>().Swarm;
        Assert.Equal(["front", "back"], swarm.Networks);
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("app: a\nstrategy: swarm\nswarm: { service: a, image: a:1, networks: [\"a b\"] }\n", File));
        Assert.Contains("'a b' is not a valid network name", Assert.Single(e.Errors).ToString());
    }

    [Fact]
    public void Rejects_what_swarm_would_refuse()
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("""
            app: a
            strategy: swarm
            swarm:
              service: a
              docker_host: /var/run/docker.sock
              update: { order: sideways, failure_action: explode, max_failure_ratio: 2 }
              rollback: { failure_action: rollback }
            """, File));
        var messages = string.Join("\n", e.Errors.Select(x => x.ToString()));
        Assert.Contains("image", messages);
        Assert.Contains("not a Docker host", messages);
        Assert.Contains("sideways", messages);
        Assert.Contains("explode", messages);
        Assert.Contains("must be a number from 0 to 1", messages);
        Assert.Contains("swarm.rollback.failure_action", messages);
    }
}
