using Cutover.Config;

namespace Cutover.Tests.Config;

/// <summary>`processes:`: each process type read with its own stop, readiness and count, web's environment, and every mistake one clear error.</summary>
public class ProcessConfigTests
{
    private const string File = "/srv/app/cutover.yml";

    private const string Base = """
        app: a
        strategy: rolling
        root: /srv/a
        run:
          command: node server.js
          instances: 4
          env: { QUEUE_URL: "redis://q" }
        proxy:
          listen: 127.0.0.1:3000

        """;

    private static ConfigError SingleError(string yaml)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, File));
        return Assert.Single(e.Errors);
    }

    [Fact]
    public void Process_types_are_read_with_their_own_stop_and_readiness_and_the_web_environment()
    {
        var config = ConfigLoader.Parse(Base + """
            processes:
              worker:
                command: node worker.js
                instances: 2
                stop_signal: SIGTERM
                kill_timeout: 60s
                max_memory: 300M
                ready: notify
                roles: [worker]
              scheduler:
                command: php artisan schedule:work
                singleton: true
            """, File);
        var settings = config.SettingsOf<RollingSettings>();
        Assert.Equal(["worker", "scheduler"], settings.Processes.Select(p => p.Name));
        var worker = settings.Processes[0];
        Assert.Equal(("node worker.js", 2, 15, "SIGTERM"), (worker.Run.Command, worker.Run.Instances, worker.Run.StopSignal, worker.Run.StopSignalName));
        Assert.Equal(TimeSpan.FromSeconds(60), worker.Run.KillTimeout);
        Assert.Equal(300L << 20, worker.Run.MaxMemory);
        Assert.Equal(ReadinessKind.Notify, worker.Run.Ready);
        Assert.Equal(["worker"], worker.Roles!);
        Assert.False(worker.Singleton);
        // The web process's environment reaches every process type.
        Assert.Equal("redis://q", worker.Run.Env["QUEUE_URL"]);
        var scheduler = settings.Processes[1];
        Assert.True(scheduler.Singleton);
        Assert.Equal((1, ReadinessKind.None, 2, (string?)null), (scheduler.Run.Instances, scheduler.Run.Ready, scheduler.Run.StopSignal, scheduler.Roles?.FirstOrDefault()));
        Assert.Equal(4, settings.Run.Instances);
    }

    [Theory]
    [InlineData("  worker:\n    command: w\n    ready: http\n", "processes.worker.ready", "'http' is not one of notify | message | none")]
    [InlineData("  scheduler:\n    command: s\n    singleton: true\n    instances: 2\n", "processes.scheduler.instances", "a singleton runs exactly one instance; got 2")]
    [InlineData("  web:\n    command: w\n", "processes.web", "'web' is the process of `run:`")]
    [InlineData("  Worker:\n    command: w\n", "processes.Worker", "may only contain lower-case letters")]
    [InlineData("  worker:\n    instances: 2\n", "processes.worker.command", "'command' is required")]
    [InlineData("  worker:\n    command: w\n    port_env: P\n", "processes.worker.port_env", "unknown key")]
    [InlineData("  worker:\n    command: w\n    ready_timeout: 5s\n", "processes.worker.ready_timeout", "read only with ready: notify or message")]
    [InlineData("  worker:\n    command: w\n    roles: []\n", "processes.worker.roles", "name at least one role")]
    [InlineData("  worker:\n    command: w\n    singleton: yes\n", "processes.worker.singleton", "'yes' is not one of true | false")]
    [InlineData("  worker: node worker.js\n", "processes.worker", "must be a mapping of keys to values")]
    [InlineData("  worker:\n", "processes.worker", "must be a mapping with at least 'command'")]
    public void A_mistake_in_a_process_type_is_one_error_at_its_key(string types, string key, string message)
    {
        var error = SingleError(Base + "processes:\n" + types);
        Assert.Equal(key, error.Key);
        Assert.Contains(message, error.Message);
    }

    private const string Docker = """
        app: a
        strategy: rolling
        root: /srv/a
        runtime: docker
        docker:
          image: a:1
          port: 3000
        proxy:
          listen: 127.0.0.1:3000
        processes:
          worker:
            command: bin/jobs

        """;

    [Fact]
    public void With_the_docker_runtime_a_process_type_is_a_command_of_the_image_ready_when_alive()
    {
        var worker = ConfigLoader.Parse(Docker, File).SettingsOf<RollingSettings>().Processes.Single();
        Assert.Equal(("bin/jobs", ReadinessKind.None, "SIGTERM"), (worker.Run.Command, worker.Run.Ready, worker.Run.StopSignalName));
        var error = SingleError(Docker + "    ready: notify\n");
        Assert.Equal("processes.worker.ready", error.Key);
        Assert.Contains("with runtime: docker a process type is ready: none", error.Message);
    }
}
