using Cutover.Deploy;
using Cutover.Progress;

namespace Cutover.Tests.Progress;

/// <summary>
/// The progress stream as both sides of a pipe see it: what JsonProgress writes (the `--json` lines users read, the
/// agent's activate stream, a fleet host's session) is what ProgressStream reads back, kind by kind, and a line
/// that is none of the stream's kinds is refused with the reason.
/// </summary>
public class ProgressWireTests
{
    /// <summary>Every progress kind, written by one JsonProgress, read and replayed on another: the same lines.</summary>
    [Fact]
    public void Every_progress_event_round_trips_through_writer_and_reader()
    {
        var written = new StringWriter();
        var writer = new JsonProgress(written);
        writer.PhaseStarted("stage");
        writer.PhaseCompleted("stage", TimeSpan.FromSeconds(1.23456), "12 files");
        writer.PhaseCompleted("shared", TimeSpan.FromMilliseconds(5));
        writer.PhaseFailed("health", TimeSpan.FromSeconds(3), "503 from /health");
        writer.Output("build", "compiling \"app\" \u00e9");
        writer.Info("started the agent");
        writer.Warning("the hosts named the release differently");
        foreach (var step in Enum.GetValues<BatchStep>()) writer.Batch("worker", 2, 3, step);
        writer.Result(new ActivationResultEvent(new ActivationResult(ActivationOutcome.Paused, "1 of 2 failed", new Dictionary<string, int> { ["r2"] = 1, ["r1"] = 1 })));

        var replayed = new StringWriter();
        var replay = new JsonProgress(replayed);
        ActivationResult? result = null;
        var lines = Lines(written);
        foreach (var line in lines)
        {
            var e = ProgressStream<ActivationResultEvent>.TryRead(line, out var problem);
            Assert.True(e is not null, problem);
            if (e is ActivationResultEvent r) result = r.Result;
            else e.ReplayOn(replay);
        }

        Assert.Equal(lines[..^1], Lines(replayed));
        Assert.Equal(Enum.GetValues<BatchStep>().Length, lines.Count(l => l.Contains("\"event\":\"batch\"")));
        Assert.NotNull(result);
        Assert.Equal(ActivationOutcome.Paused, result.Outcome);
        Assert.Equal("1 of 2 failed", result.Error);
        Assert.Equal(1, result.Instances!["r2"]);
    }

    /// <summary>The `--json` lines are public interface: the records keep the field names anonymous objects wrote.</summary>
    [Fact]
    public void The_json_lines_keep_their_public_field_names()
    {
        var written = new StringWriter();
        var writer = new JsonProgress(written);
        writer.PhaseStarted("stage");
        writer.PhaseCompleted("stage", TimeSpan.FromSeconds(1.5));
        writer.PhaseFailed("health", TimeSpan.FromSeconds(2), "down");
        writer.Output("build", "ok");
        writer.Info("i");
        writer.Warning("w");
        writer.Batch("web", 1, 2, BatchStep.Started);
        writer.Batch("web", 2, 2, BatchStep.RolledBack);
        writer.Failed("locked", ["held by pid 1"]);
        writer.Result(new ActivationResultEvent(ActivationResult.Live));

        string[] expected =
        [
            """{"event":"phase_started","phase":"stage"}""",
            """{"event":"phase_completed","phase":"stage","seconds":1.5,"detail":null}""",
            """{"event":"phase_failed","phase":"health","seconds":2,"error":"down"}""",
            """{"event":"output","phase":"build","line":"ok"}""",
            """{"event":"info","message":"i"}""",
            """{"event":"warning","message":"w"}""",
            """{"event":"batch","process":"web","number":1,"of":2,"step":"started"}""",
            """{"event":"batch","process":"web","number":2,"of":2,"step":"rolled_back"}""",
            """{"event":"error","kind":"locked","errors":["held by pid 1"]}""",
            """{"event":"result","result":{"outcome":"live","error":null,"instances":null,"succeeded":true}}""",
        ];
        var lines = Lines(written);
        Assert.Equal(expected.Length, lines.Length);
        for (var i = 0; i < lines.Length; i++) Assert.Equal(expected[i], lines[i]);
    }

    [Theory]
    [InlineData("not json at all")]
    [InlineData("""{"event":"phase_done","phase":"stage"}""")]
    [InlineData("""{"phase":"stage"}""")]
    [InlineData("""{"event":"info"}""")]
    [InlineData("""{"event":"phase_completed","phase":"stage","seconds":"soon","detail":null}""")]
    [InlineData("""{"event":"output","phase":null,"line":"x"}""")]
    [InlineData("""{"event":"result","outcome":"live"}""")]
    [InlineData("""{"event":"batch","process":"web","number":1,"of":2,"step":"halfway"}""")]
    [InlineData("""{"event":"batch","process":"web","number":1,"step":"ready"}""")]
    public void A_line_that_is_none_of_the_stream_kinds_is_refused_with_the_reason(string line)
    {
        var e = ProgressStream<ActivationResultEvent>.TryRead(line, out var problem);
        Assert.Null(e);
        Assert.False(string.IsNullOrWhiteSpace(problem));
    }

    private static string[] Lines(StringWriter writer) => writer.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
}
