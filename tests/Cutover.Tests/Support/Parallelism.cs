using Xunit;

// Three test collections at a time on the two cores CI has, not xunit's one per core. Why: most classes outside the
// serial collections spend their time waiting on processes they started (CLIs, agents, sshd, dockerd, pebble), and
// the fleet collection alone (one test at a time, ~11 minutes) held one of the two slots for most of the parallel
// phase. The serial collections (load and timing) still run alone, after everything else, one test at a time.
[assembly: CollectionBehavior(MaxParallelThreads = 3)]
