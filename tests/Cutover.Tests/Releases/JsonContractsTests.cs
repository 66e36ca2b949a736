using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Cutover.History;
using Cutover.Locking;
using Cutover.Releases;

namespace Cutover.Tests.Releases;

/// <summary>
/// The records every `status`, `releases` and `rollback` reads go through compile-time JSON contracts (start-up,
/// issue 14). The files on disk must not notice: the same text as the reflection contracts wrote, read back the same.
/// </summary>
public class JsonContractsTests
{
    private static readonly DateTimeOffset Noon = new(2026, 11, 27, 12, 0, 5, TimeSpan.Zero);

    private static readonly ReleaseRecord Record = new()
    {
        Id = "20261127_120005_2",
        Revision = "abc123",
        Created = Noon,
        Status = ReleaseStatus.RolledBack,
        User = "deploy",
        Source = "/srv/build",
        Failure = "health check failed",
        Updated = Noon.AddMinutes(1),
        WentLive = Noon.AddSeconds(30),
        Migrations = ["001_init.sql", "002_index.sql"],
        SafetyAssured = [new SafetyAssuredNote("002_index.sql", 3, "small table", "CREATE INDEX i ON t (c)")],
        Image = "app:2.1",
        Spec = "2 replicas",
    };

    private static readonly HistoryEntry Entry = new()
    {
        Action = "rollback",
        Release = "20261127_120005",
        Revision = "abc123",
        From = "20261127_120005_2",
        User = "deploy",
        Started = Noon,
        Finished = Noon.AddSeconds(2),
        Outcome = "success",
        Error = null,
        EnvironmentChanged = ["DATABASE_URL"],
        PhaseSeconds = new Dictionary<string, double> { ["switch"] = 0.004, ["after_rollback"] = 1.5 },
    };

    private static readonly LockHolder Holder = new(4242, "deploy", "cutover rollback", Noon);

    [Fact]
    public void Records_history_lines_and_the_lock_holder_come_from_the_compile_time_contracts()
    {
        foreach (var type in new[] { typeof(ReleaseRecord), typeof(HistoryEntry), typeof(LockHolder) })
            foreach (var options in new[] { Json.Options, Json.Compact })
                Assert.IsAssignableFrom<JsonSerializerContext>(options.GetTypeInfo(type).OriginatingResolver);
    }

    [Fact]
    public void They_are_written_exactly_as_reflection_wrote_them_and_read_back_equal()
    {
        foreach (var options in new[] { Json.Options, Json.Compact })
        {
            var reflectionOptions = new JsonSerializerOptions(options) { TypeInfoResolver = new DefaultJsonTypeInfoResolver() };
            AssertSame(Record, options, reflectionOptions);
            AssertSame(Entry, options, reflectionOptions);
            AssertSame(Holder, options, reflectionOptions);
        }
        var text = JsonSerializer.Serialize(Record, Json.Options);
        Assert.Contains("\"status\": \"rolled_back\"", text);
        Assert.Contains("\"went_live\":", text);
        Assert.DoesNotContain("release_id", text);
        Assert.Equal(Record.SafetyAssured, JsonSerializer.Deserialize<ReleaseRecord>(text, Json.Options)!.SafetyAssured);
        var entry = JsonSerializer.Deserialize<HistoryEntry>(JsonSerializer.Serialize(Entry, Json.Compact), Json.Compact)!;
        Assert.Equal(Entry.PhaseSeconds, entry.PhaseSeconds);
        Assert.Equal(Entry.EnvironmentChanged, entry.EnvironmentChanged);
    }

    /// <summary>
    /// The agent's answers that `status` reads and the activate request `rollback` sends (issue 14: the agent client's
    /// start-up) moved to the contracts too; an agent of an earlier build wrote them by reflection, and must still be read.
    /// </summary>
    [Fact]
    public void The_agent_s_answers_and_the_activate_request_are_written_as_reflection_wrote_them()
    {
        var apps = new List<Cutover.Agent.AppView>
        {
            new("shop", "r2", "127.0.0.1:8080", 3, new Cutover.Agent.WarmSetView("r1", Noon, 2),
                [new Cutover.Agent.InstanceView("shop-0", "r2", 4242, 9001, "127.0.0.1:9001", null, "ready", 12.5, 1 << 20, 1, null)],
                new Cutover.Agent.ProxyCountersView(10, 1, 0, 0, 0), new Cutover.Acme.CertificateStatus(["shop.example"], Noon, Noon, "no", Noon, Noon, 2),
                new Cutover.Agent.TrafficView(false, Noon, 0), [new Cutover.Agent.ProcessCountView("web", 1, 2, true)], new Cutover.Agent.DeployingView("r3", "deploy", "green", null, Noon)),
        };
        var activate = new Cutover.Agent.AgentServer.ActivateRequest("/etc/shop.yml", "r2", "/srv/shop/releases/r2", ["web"], ["/etc/a.yml", "/etc/shop.yml"],
            Processes: ["web"], Scale: new Dictionary<string, int> { ["worker"] = 2 });
        foreach (var options in new[] { Json.Options, Json.Compact, Json.Strict })
        {
            Assert.IsAssignableFrom<JsonSerializerContext>(options.GetTypeInfo(typeof(List<Cutover.Agent.AppView>)).OriginatingResolver);
            var reflectionOptions = new JsonSerializerOptions(options) { TypeInfoResolver = new DefaultJsonTypeInfoResolver() };
            AssertSame(apps, options, reflectionOptions);
            AssertSame(new Cutover.Agent.AgentInfo(42, ["state restored"], "0.1.0", Noon), options, reflectionOptions);
            AssertSame(activate, options, reflectionOptions);
            AssertSame(new Cutover.Agent.AgentRefusal("no"), options, reflectionOptions);
        }
    }

    [Fact]
    public void A_record_missing_a_required_field_is_still_refused()
    {
        // ReleaseStore lists such a record as `unreadable`; the contracts must keep `required` as reflection did.
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<ReleaseRecord>("""{"id": "20261127_120005", "status": "active"}""", Json.Options));
        Assert.Throws<JsonException>(() => JsonSerializer.Deserialize<ReleaseRecord>("""{"id": "20261127_120005", "created": "2026-11-27T12:00:05+00:00", "status": "nonsense"}""", Json.Options));
    }

    private static void AssertSame<T>(T value, JsonSerializerOptions options, JsonSerializerOptions reflectionOptions)
    {
        var text = JsonSerializer.Serialize(value, options);
        Assert.Equal(JsonSerializer.Serialize(value, reflectionOptions), text);
        Assert.Equal(JsonSerializer.Serialize(JsonSerializer.Deserialize<T>(text, reflectionOptions), options), JsonSerializer.Serialize(JsonSerializer.Deserialize<T>(text, options), options));
    }
}
