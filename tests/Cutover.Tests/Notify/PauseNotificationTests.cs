using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Notify;

/// <summary>The paused event: `cutover pause` of a rolling app under the real agent posts one notification.</summary>
[Trait(Needs.Trait, Needs.Slow)]
public sealed class PauseNotificationTests(ITestOutputHelper output) : IDisposable
{
    private readonly AgentBed _bed = new();

    public void Dispose() => _bed.Dispose();

    [Fact]
    public async Task Cutover_pause_posts_the_paused_event_and_a_rolling_deploy_the_deployed_one()
    {
        using var receiver = new WebhookReceiver();
        var config = _bed.WriteNodeConfig(HealthServer.FreePort(), "rolling", $"""
            notify:
              webhook: {receiver.Url("PAUSESECRET")}
              on: [deployed, paused]
            """);
        _bed.WriteVersion("1");
        var deploy = await _bed.Cli("deploy", _bed.Source, "-c", config, "--revision", "v1");
        output.WriteLine(deploy.All);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        var pause = await _bed.Cli("pause", "--timeout", "2s", "-c", config);
        output.WriteLine(pause.All);
        Assert.True(pause.ExitCode == 0, pause.All);

        Assert.Equal(["deployed", "paused"], receiver.Received.Select(r => r.Body.GetProperty("event").GetString()));
        var deployed = receiver.Of("deployed")[0];
        Assert.Equal("v1", deployed.GetProperty("revision").GetString());
        Assert.Equal("success", deployed.GetProperty("outcome").GetString());
        var paused = receiver.Of("paused")[0];
        Assert.Equal("node", paused.GetProperty("app").GetString());
        Assert.Equal("paused", paused.GetProperty("outcome").GetString());
        Assert.Equal(Environment.UserName, paused.GetProperty("who").GetString());
        Assert.Equal(JsonValueKind.Null, paused.GetProperty("duration").ValueKind);
        Assert.Contains("node: " + Environment.UserName + " paused it", paused.GetProperty("text").GetString());
        Assert.DoesNotContain("PAUSESECRET", deploy.All + pause.All);
    }
}
