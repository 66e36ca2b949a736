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
