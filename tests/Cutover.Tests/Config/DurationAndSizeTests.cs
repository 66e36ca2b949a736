using Cutover.Config;

namespace Cutover.Tests.Config;

public class DurationAndSizeTests
{
    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("2s", 2000)]
    [InlineData("1.5s", 1500)]
    [InlineData("10m", 600_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1m30s", 90_000)]
    [InlineData("0s", 0)]
    public void Durations_parse(string text, double ms) => Assert.Equal(TimeSpan.FromMilliseconds(ms), Duration.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("10")]
    [InlineData("s")]
    [InlineData("10 s")]
    [InlineData("-1s")]
    [InlineData("1d")]
    [InlineData("99999999999h")] // overflowed TimeSpan
    [InlineData("1177h")] // over 49 days: more than a timer takes
    [InlineData("1176h1ms")]
    public void Bad_durations_are_refused(string text) => Assert.False(Duration.TryParse(text, out _, out _));

    [Fact]
    public void The_longest_duration_is_49_days() => Assert.Equal(TimeSpan.FromDays(49), Duration.Parse("1176h"));

    [Theory]
    [InlineData("500ms")]
    [InlineData("2s")]
    [InlineData("10m")]
    [InlineData("2h")]
    public void Format_round_trips(string text) => Assert.Equal(text, Duration.Format(Duration.Parse(text)));

    [Theory]
    [InlineData("512K", 512L << 10)]
    [InlineData("500M", 500L << 20)]
    [InlineData("2G", 2L << 30)]
    [InlineData("1.5G", 3L << 29)]
    [InlineData("1024", 1024)]
    [InlineData("100MB", 100L << 20)]
    public void Sizes_parse(string text, long bytes)
    {
        Assert.True(ByteSize.TryParse(text, out var value, out _));
        Assert.Equal(bytes, value);
    }

    [Theory]
    [InlineData("big")]
    [InlineData("5T")]
    [InlineData("M")]
    public void Bad_sizes_are_refused(string text) => Assert.False(ByteSize.TryParse(text, out _, out _));
}
