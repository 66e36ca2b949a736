using Cutover.Platform;

namespace Cutover.Tests.Platform;

/// <summary>
/// Platform/SocketEngines where it cannot place sockets. The agent's side (inline completions: one socket thread per
/// core found, each connection and its upstream connections on one) runs in a real agent: AgentMetricsTests.
/// </summary>
public class SocketEnginesTests
{
    /// <summary>
    /// This test host runs socket continuations on the thread pool (no inline completions, unlike the agent): no socket
    /// thread can be seen, so discovery says Unknown, quickly, and pinning then does nothing (the proxy works as before).
    /// </summary>
    [Fact]
    public async Task Without_inline_completions_no_thread_is_found_and_pinning_does_nothing()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var engines = await SocketEngines.DiscoverAsync(timeout.Token);
        Assert.Same(SocketEngines.Unknown, engines);
        Assert.Equal(0, engines.Count);
        Assert.Equal(-1, engines.OfCurrentThread());
        Assert.Equal(0, engines.ThreadOf(0));
        engines.Pin(0);
        engines.Pin(-1);
        Assert.Equal(0, SocketEngines.Unknown.Count);
    }
}
