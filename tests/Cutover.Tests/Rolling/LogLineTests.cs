using Cutover.Supervisor;
using Cutover.Tests.Support;

namespace Cutover.Tests.Rolling;

/// <summary>The instance log's line format read back for `cutover logs`: --since, --grep, --instance.</summary>
public class LogLineTests
{
    [Fact]
    public void A_line_LogSink_wrote_is_read_back_with_its_time_and_filtered_by_instance_since_and_grep()
    {
        using var dir = new TempDir();
        using (var sink = new LogSink(dir.Path))
        {
            sink.Write("shop-0", 41, "out", "GET /orders 200");
            sink.Write("shop-1", 42, "err", "GET /orders failed");
        }
        var tail = new LogTail(dir.Path);
        var all = tail.RecentLines(null, new LogFilter(), out _);
        Assert.Equal(2, all.Count);
        Assert.Equal(("shop-0", "out", "GET /orders 200"), (all[0].Instance, all[0].Stream, all[0].Text));
        Assert.InRange(all[0].Time!.Value, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal(["GET /orders failed"], tail.RecentLines(null, new LogFilter(Instances: new InstanceSelection("shop", Number: 1)), out _).Select(l => l.Text));
        Assert.Equal(["GET /orders failed"], tail.RecentLines(null, new LogFilter(Grep: "failed"), out _).Select(l => l.Text));
        // --grep looks at what the app wrote, not at the prefix Cutover adds.
        Assert.Empty(tail.RecentLines(null, new LogFilter(Grep: "shop-0"), out _));
        Assert.Empty(tail.RecentLines(null, new LogFilter(Since: DateTimeOffset.UtcNow.AddSeconds(5)), out _));
        Assert.Single(tail.RecentLines(1, new LogFilter(), out _));
    }

    [Fact]
    public async Task A_follow_starts_where_the_recent_lines_ended_so_a_line_written_in_between_comes_once()
    {
        using var dir = new TempDir();
        using var sink = new LogSink(dir.Path);
        sink.Write("shop-0", 41, "out", "before");
        var tail = new LogTail(dir.Path);
        Assert.Equal(["before"], tail.RecentLines(null, new LogFilter(), out var end).Select(l => l.Text));
        sink.Write("shop-0", 41, "out", "between");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var line in tail.FollowLinesAsync(new LogFilter(), timeout.Token, end))
        {
            Assert.Equal("between", line.Text);
            return;
        }
    }

    [Fact]
    public void A_line_without_Cutovers_prefix_is_kept_whole_but_never_counts_as_recent()
    {
        var line = LogLine.Parse("panic: something");
        Assert.Equal((null, "panic: something"), (line.Time, line.Text));
        Assert.True(new LogFilter().Keeps(line));
        Assert.False(new LogFilter(Since: DateTimeOffset.MinValue).Keeps(line));
    }
}
