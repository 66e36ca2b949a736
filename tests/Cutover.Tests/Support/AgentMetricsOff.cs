using System.Runtime.CompilerServices;

namespace Cutover.Tests.Support;

/// <summary>
/// Every agent a test starts (through the CLI, a deploy, a fixture) inherits CUTOVER_METRICS_LISTEN=off from this
/// process: tests run many agents at once, and all of them on the default 127.0.0.1:9464 would refuse to start but one.
/// A test that wants metrics gives the agent its own address (AgentBed.MetricsListen, or the variable set for one process).
/// </summary>
internal static class AgentMetricsOff
{
    [ModuleInitializer]
    internal static void TurnOff() => Environment.SetEnvironmentVariable(Cutover.Metrics.MetricsAddress.Variable, Cutover.Metrics.MetricsAddress.Off);
}
