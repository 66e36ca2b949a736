using Cutover.Supervisor;
using Cutover.Tests.Support;

namespace Cutover.Tests.Rolling;

/// <summary>`cutover logs -f` across a rotation: every line once, in order, however the rotation falls.</summary>
public class LogTailFollowTests
{
    [Fact]
    public async Task A_line_written_just_before_a_rotation_that_falls_between_the_followers_read_and_its_look_is_not_lost()
    {
        using var dir = new TempDir();
        var current = dir.Combine(LogSink.CurrentName);
        File.WriteAllText(current, "");
        var caughtUp = 0;
        var tail = new LogTail(dir.Path)
        {
            CaughtUp = () =>
            {
                switch (++caughtUp)
                {
                    case 1: // open and at the end: the first line
                        File.AppendAllText(current, "a\n");
                        break;
                    case 2: // the follower has read "a" and found nothing more; now, before it looks for a rotation:
                        // the writer's last line into this file, then the rotation (close, rename, a new current.log).
                        File.AppendAllText(current, "b\n");
                        File.Move(current, dir.Combine("20260101_000000_000.log"));
                        File.WriteAllText(current, "c\n");
                        break;
                }
            },
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var lines = new List<string>();
        await foreach (var line in tail.FollowAsync(null, timeout.Token))
        {
            lines.Add(line);
            if (line == "c") break;
        }
        Assert.Equal(["a", "b", "c"], lines);
    }

    [Fact]
    public async Task Every_line_of_a_writer_that_rotates_every_few_lines_is_followed_once_and_in_order()
    {
        using var dir = new TempDir();
        using var sink = new Cutover.Logging.RotatingLogFile(dir.Combine(LogSink.CurrentName), "", maxBytes: 64, retain: 1000);
        var started = new TaskCompletionSource();
        var tail = new LogTail(dir.Path) { CaughtUp = () => started.TrySetResult() };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        const int count = 400;
        var writer = Task.Run(async () =>
        {
            await started.Task;
            for (var i = 0; i < count; i++)
            {
                sink.Write($"line {i}\n");
                if (i % 7 == 0) await Task.Delay(1);
            }
        });
        var lines = new List<string>();
        await foreach (var line in tail.FollowAsync(null, timeout.Token))
        {
            lines.Add(line);
            if (line == $"line {count - 1}") break;
        }
        await writer;
        Assert.Equal(Enumerable.Range(0, count).Select(i => $"line {i}"), lines);
        Assert.True(Directory.GetFiles(dir.Path, "2*.log").Length > 50, "the writer rotated as often as the test needs");
    }
}
