using Xunit.Abstractions;
using Xunit.Sdk;

namespace Cutover.Tests.Support;

/// <summary>
/// The orderer finds the run times on the collections xunit makes (a class's own, a named definition's): if xunit named
/// them otherwise, every estimate would silently be 0 and the order a hash again.
/// </summary>
public class TestSchedulingTests
{
    [Fact]
    public void Collections_as_xunit_makes_them_are_started_longest_first_by_their_RunsFor()
    {
        var assembly = new TestAssembly(new ReflectionAssemblyInfo(typeof(TestSchedulingTests).Assembly));
        var collections = new CollectionPerClassTestCollectionFactory(assembly, new NullMessageSink());
        var unmarked = collections.Get(Reflector.Wrap(typeof(TestSchedulingTests)));
        var crashSafety = collections.Get(Reflector.Wrap(typeof(Integration.CrashSafetyTests)));
        var fleet = collections.Get(Reflector.Wrap(typeof(Fleet.FleetDeployTests)));
        var secondFleet = collections.Get(Reflector.Wrap(typeof(Fleet.FleetTopTests)));
        var swarm = collections.Get(Reflector.Wrap(typeof(Swarm.SwarmUpdateTests)));

        Assert.Equal(0, LongestFirst.Seconds(unmarked));
        Assert.Equal(190, LongestFirst.Seconds(crashSafety));
        Assert.Equal(420, LongestFirst.Seconds(fleet));
        Assert.NotSame(fleet, secondFleet);
        Assert.Equal(400, LongestFirst.Seconds(secondFleet));
        Assert.Equal(190, LongestFirst.Seconds(swarm));
        Assert.Equal([fleet, secondFleet, crashSafety, swarm, unmarked],
            new LongestFirst().OrderTestCollections([unmarked, swarm, crashSafety, secondFleet, fleet]));
    }
}
