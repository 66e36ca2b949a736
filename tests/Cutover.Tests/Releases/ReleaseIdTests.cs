using Cutover.Releases;

namespace Cutover.Tests.Releases;

public class ReleaseIdTests
{
    private static readonly DateTimeOffset Noon = new(2026, 11, 27, 12, 0, 5, TimeSpan.Zero);

    [Fact]
    public void An_id_is_the_utc_second()
    {
        var local = new DateTimeOffset(2026, 11, 27, 13, 0, 5, TimeSpan.FromHours(1));
        Assert.Equal("20261127_120005", ReleaseId.Next(local, []).Value);
    }

    [Fact]
    public void Deploys_in_the_same_second_get_distinct_ids_that_sort_in_order()
    {
        var ids = new List<ReleaseId>();
        for (var i = 0; i < 12; i++) ids.Add(ReleaseId.Next(Noon, ids));
        Assert.Equal(12, ids.Select(i => i.Value).Distinct().Count());
        Assert.Equal("20261127_120005", ids[0].Value);
        Assert.Equal("20261127_120005_2", ids[1].Value);
        Assert.Equal("20261127_120005_12", ids[11].Value);
        Assert.Equal(ids, ids.OrderBy(i => i).ToList());
        // ordinal string order would put _10 before _2; ours does not
        Assert.True(ReleaseId.Parse("20261127_120005_10") > ReleaseId.Parse("20261127_120005_2"));
        Assert.True(ReleaseId.Parse("20261127_120005_99") < ReleaseId.Parse("20261127_120006"));
    }

    [Fact]
    public void A_clock_that_went_backwards_still_gives_a_newer_id()
    {
        var existing = new[] { ReleaseId.Parse("20261127_130000") };
        var id = ReleaseId.Next(Noon, existing);
        Assert.True(id > existing[0]);
        Assert.Equal("20261127_130000_2", id.Value);
    }

    [Theory]
    [InlineData("20261127_120005")]
    [InlineData("20261127_120005_2")]
    public void Valid_ids_parse_back(string text) => Assert.Equal(text, ReleaseId.Parse(text).Value);

    [Theory]
    [InlineData("20261327_120005")]
    [InlineData("20261127-120005")]
    [InlineData("20261127_120005_1")]
    [InlineData("20261127_120005_x")]
    [InlineData("latest")]
    [InlineData(".trash-20261127_120005")]
    public void Other_names_are_not_releases(string text) => Assert.False(ReleaseId.TryParse(text, out _));
}
