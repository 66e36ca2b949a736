namespace Cutover.Tests.Support;

/// <summary>Tests that run real servers under load or kill processes: one at a time, so timings stay honest on 2 cores.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class Serial
{
    public const string Name = "serial";
}
