using Cutover.Agent;
using Cutover.Config;
using Cutover.Progress;
using Cutover.Releases;
using Cutover.Swarm;

namespace Cutover.Deploy;

/// <summary>The one place a strategy picks its <see cref="IReleaseActivation"/>; a new strategy adds its line here.</summary>
public static class ReleaseActivations
{
    /// <param name="instances">The agent, for the strategies whose releases run as instances (rolling, blue-green).</param>
    public static IReleaseActivation For(CutoverConfig config, IDeployProgress progress, IInstanceActivator? instances = null) => config.Settings switch
    {
        // Docker.DotNet needs the JIT: the native `cutover` hands a swarm app to the JIT build before it gets here.
        SwarmSettings when Platform.JitOnly.IsAvailable => new SwarmActivation(config, new DockerSwarmUpdater(config, progress), new ReleaseStore(new RootLayout(config.Root), config.Environment.Redactor), progress),
        InstanceSettings => new AgentActivation(
            instances ?? throw new ArgumentException($"strategy {config.Strategy.Name} needs an instance activator (the agent)", nameof(instances)),
            new RootLayout(config.Root), progress),
        SymlinkSettings => new SymlinkActivation(),
        var other => throw new ArgumentException($"strategy {other.Strategy.Name} has no activation", nameof(config)),
    };
}
