namespace Cutover.Tests.Support;

/// <summary>The shared wait: a condition that never holds ends in an error that names what was awaited.</summary>
public class WaitTests
{
    [Fact]
    public async Task A_condition_that_never_holds_throws_naming_what_was_awaited()
    {
        var e = await Assert.ThrowsAsync<TimeoutException>(() => Wait.UntilAsync(() => false, TimeSpan.Zero, "the moon to turn green"));
        Assert.Equal("waited 0 s for the moon to turn green", e.Message);
        Assert.Throws<TimeoutException>(() => Wait.Until(() => false, TimeSpan.Zero, "the moon"));
    }

    [Fact]
    public async Task The_condition_is_polled_until_it_holds_and_within_says_whether_it_did()
    {
        var calls = 0;
        Assert.True(await Wait.WithinAsync(() => ++calls == 3, TimeSpan.FromMinutes(1), TimeSpan.FromMilliseconds(1)));
        Assert.Equal(3, calls);
        Assert.True(await Wait.WithinAsync(async () => { await Task.Yield(); return true; }, TimeSpan.Zero));
        Assert.False(Wait.Within(() => false, TimeSpan.Zero));
    }
}
