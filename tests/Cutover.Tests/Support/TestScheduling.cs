using System.Reflection;
using Xunit.Abstractions;
using Xunit.Sdk;

// Three collections at a time on two cores: the parallel phase waits on processes (sshd hosts, dockerd, agents, builds)
// more than it computes. The tests that measure time or run load stay in the serial collection, alone, after the rest.
[assembly: CollectionBehavior(MaxParallelThreads = 3)]
[assembly: TestCollectionOrderer("Cutover.Tests.Support.LongestFirst", "Cutover.Tests")]

namespace Cutover.Tests.Support;

/// <summary>
/// About how long a test collection (a class, or a collection definition) runs, measured in a CI run: the
/// <see cref="LongestFirst"/> orderer starts the long ones first.
/// </summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class RunsForAttribute(int seconds) : Attribute
{
    public int Seconds { get; } = seconds;
}

/// <summary>
/// Starts the test collections that run longest first. xunit starts collections in the orderer's order as slots free
/// up, and its default order is a hash: a fleet collection, one chain of minutes, could start late and run on alone at
/// the end of the parallel phase while the other slots sat idle. Longest first keeps every slot busy to the end. The
/// serial collection runs after all of these, whatever its place here.
/// </summary>
public sealed class LongestFirst : ITestCollectionOrderer
{
    private const string PerClassPrefix = "Test collection for ";

    public IEnumerable<ITestCollection> OrderTestCollections(IEnumerable<ITestCollection> testCollections) =>
        testCollections.OrderByDescending(Seconds).ThenBy(c => c.DisplayName, StringComparer.Ordinal).ToList();

    internal static int Seconds(ITestCollection collection) =>
        TypeOf(collection)?.GetCustomAttribute<RunsForAttribute>()?.Seconds ?? 0;

    private static Type? TypeOf(ITestCollection collection) =>
        collection.CollectionDefinition?.ToRuntimeType()
        ?? (collection.DisplayName.StartsWith(PerClassPrefix, StringComparison.Ordinal)
            ? typeof(LongestFirst).Assembly.GetType(collection.DisplayName[PerClassPrefix.Length..])
            : null);
}
