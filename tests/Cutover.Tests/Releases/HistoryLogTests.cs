using Cutover.History;
using Cutover.Releases;
using Cutover.Tests.Support;

namespace Cutover.Tests.Releases;

/// <summary>
/// `status` reads only the last action from the end of history.jsonl (issue 14: the log grows for the life of a root,
/// and reading it whole made every `status` slower with every deploy). It must be the entry a whole read ends with.
/// </summary>
public class HistoryLogTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void The_last_entry_read_from_the_end_is_the_last_one_a_whole_read_finds()
    {
        var layout = new RootLayout(_dir.Path);
        var log = new HistoryLog(layout);
        Assert.Null(log.ReadLast());
        Directory.CreateDirectory(Path.GetDirectoryName(layout.History)!);
        File.WriteAllText(layout.History, "");
        Assert.Null(log.ReadLast());

        var started = new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
        HistoryEntry Entry(int i) => new()
        {
            Action = i % 2 == 0 ? "deploy" : "rollback", Release = $"r{i}", User = "deploy", Started = started.AddMinutes(i), Finished = started.AddMinutes(i).AddSeconds(2),
            Outcome = "success", Error = i == 0 ? new string('x', 40_000) : null,
        };
        // The first entry alone is longer than the first tail read, and every later line is cut short or blank: the
        // tail has to grow to the whole file and still not take a part of a line for a line.
        log.Append(Entry(0));
        File.AppendAllText(layout.History, "{\"action\":\"deploy\",\"rel\n\n   \n{}\r\n");
        AssertSame(log, "r0");

        for (var i = 1; i <= 300; i++) log.Append(Entry(i));
        AssertSame(log, "r300");
        // A crash mid-append leaves a line cut short at the end (AtomicFile.AppendLine starts the next one on a line of its own).
        File.AppendAllText(layout.History, "{\"action\":\"rollback\",\"release\":\"r301\",\"us");
        AssertSame(log, "r300");
        log.Append(Entry(302));
        AssertSame(log, "r302");
    }

    private static void AssertSame(HistoryLog log, string release)
    {
        var whole = log.Read()[^1];
        var last = log.ReadLast();
        Assert.Equal(release, whole.Release);
        Assert.Equal(whole with { PhaseSeconds = null! }, last! with { PhaseSeconds = null! });
    }
}
