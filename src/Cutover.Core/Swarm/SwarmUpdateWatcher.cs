using Cutover.Progress;
using Docker.DotNet;
using Docker.DotNet.Models;

namespace Cutover.Swarm;

public enum SwarmUpdateResult
{
    /// <summary>Every slot runs a task of the release, and Swarm says the update completed (or there was no update: a new service).</summary>
    Converged,
    /// <summary>Swarm counted failures and rolled the service back to its previous spec by itself.</summary>
    RolledBack,
    /// <summary>Swarm stopped the update (failure_action: pause) or its own rollback (rollback_paused): a mixed fleet.</summary>
    Paused,
    /// <summary>A task stayed before running past the deadline. Swarm would wait forever; Cutover gave up.</summary>
    Stuck,
}

/// <summary>How an update ended, with the tasks that explain it.</summary>
public sealed record SwarmUpdateOutcome(SwarmUpdateResult Result, string? UpdateState, string? UpdateMessage, IReadOnlyList<SwarmTask> Culprits)
{
    public bool Succeeded => Result == SwarmUpdateResult.Converged;

    /// <summary>The service is back on its previous spec: Swarm rolled back by itself, or at Cutover's request after a hang.</summary>
    public bool BackOnPrevious { get; init; }

    /// <summary>The sentence for the user: what Swarm did, and which tasks failed or hang and why.</summary>
    public string Describe(int replicas)
    {
        var tasks = string.Join("; ", Culprits.Select(t => $"task {t.Slot}/{replicas} ({t.Image}) {t.State}: {t.Reason}"));
        var what = Result switch
        {
            SwarmUpdateResult.RolledBack => "Swarm rolled the update back",
            SwarmUpdateResult.Paused => $"Swarm paused the {(UpdateState == "rollback_paused" ? "rollback" : "update")}; the service may run a mix of old and new tasks",
            SwarmUpdateResult.Stuck => "tasks never reached running (Swarm does not time these out; Cutover gave up)",
            _ => "converged",
        };
        var message = UpdateMessage is { Length: > 0 } m ? $" ({m})" : "";
        return tasks.Length == 0 ? what + message : $"{what}{message}: {tasks}";
    }
}

/// <summary>
/// Follows one service update (or creation) through the Engine API until Swarm finishes it, rolls it back or
/// pauses it, and reports each slot's newest task as it changes (`2/3: running myapp:2.1`). Swarm never fails a
/// task that does not reach running (moby #36934, swarmkit #486), so a task that stays before running longer than
/// the deadline ends the watch as <see cref="SwarmUpdateResult.Stuck"/>.
/// </summary>
public sealed class SwarmUpdateWatcher(IDockerClient client, IDeployProgress progress, TimeSpan taskDeadline, TimeSpan? pollInterval = null)
{
    private readonly TimeSpan _poll = pollInterval ?? TimeSpan.FromMilliseconds(300);

    /// <param name="release">The release whose tasks this update creates (their cutover.release label).</param>
    /// <param name="isUpdate">False for a service just created: Swarm keeps no UpdateStatus for those.</param>
    /// <param name="before">The service just before the change was posted (null for a creation): its task ids and update start.</param>
    public async Task<SwarmUpdateOutcome> WatchAsync(string service, string release, int replicas, SwarmSnapshot? before, CancellationToken cancellationToken)
    {
        var isUpdate = before is not null;
        var terminalSince = (State: (string?)null, At: DateTimeOffset.MinValue);
        var shown = new Dictionary<long, (string Id, string State)>();
        var firstSeen = new Dictionary<string, DateTimeOffset>();
        string? lastUpdateState = null;
        var sawRelease = false;
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var inspected = await client.Swarm.InspectServiceAsync(service, cancellationToken);
            var tasks = (await ListTasksAsync(client, inspected.ID, cancellationToken)).Select(SwarmTask.From).ToList();
            var now = DateTimeOffset.UtcNow;
            foreach (var t in tasks) firstSeen.TryAdd(t.Id, now);
            // The change has begun once Swarm started a new update (its start time moved) or made a task of the release;
            // old tasks of the same release (a rollback to it) are history and show nothing.
            sawRelease |= !isUpdate && tasks.Any(t => t.Release == release)
                || isUpdate && (inspected.UpdateStatus?.StartedAt is { } startedAt && startedAt != before!.UpdateStartedAt
                                || tasks.Any(t => t.Release == release && !before!.TaskIds.Contains(t.Id)));

            foreach (var slot in tasks.GroupBy(t => t.Slot).OrderBy(g => g.Key))
            {
                var newest = slot.MaxBy(t => t.Created)!;
                if (shown.TryGetValue(slot.Key, out var was) && was == (newest.Id, newest.State)) continue;
                shown[slot.Key] = (newest.Id, newest.State);
                var why = newest.Failed || (newest.IsBeforeRunning && newest.Error is { Length: > 0 }) ? $" ({newest.Reason})" : "";
                progress.Info($"{slot.Key}/{replicas}: {newest.State} {newest.Image}{why}");
            }

            var update = inspected.UpdateStatus;
            var state = update?.State;
            if (state != lastUpdateState && state is not null && sawRelease)
            {
                progress.Info($"swarm: {state.Replace('_', ' ')}{(update!.Message is { Length: > 0 } m ? $": {m}" : "")}");
                lastUpdateState = state;
            }

            // A status read before Swarm picked up this change describes the previous one: trusted only once the
            // change has begun (above).
            var current = tasks.Where(t => t.DesiredState == "running").ToList();
            var converged = current.Count(t => t.Release == release && t.IsRunning) >= replicas && current.All(t => t.Release == release);
            // A safety net for whatever the checks above miss: a final state that holds for a whole deadline is final.
            var settled = false;
            if (state is "completed" or "rollback_completed" or "paused" or "rollback_paused")
            {
                if (terminalSince.State != state) terminalSince = (state, now);
                else settled = now - terminalSince.At > taskDeadline;
            }
            else terminalSince = (null, now);
            sawRelease |= settled;
            if (sawRelease)
            {
                switch (state)
                {
                    case "completed" when converged:
                    case null when !isUpdate && converged:
                        return new SwarmUpdateOutcome(SwarmUpdateResult.Converged, state, update?.Message, []);
                    case "rollback_completed":
                        return new SwarmUpdateOutcome(SwarmUpdateResult.RolledBack, state, update!.Message, Culprits(tasks, release)) { BackOnPrevious = true };
                    case "paused" or "rollback_paused":
                        return new SwarmUpdateOutcome(SwarmUpdateResult.Paused, state, update!.Message, Culprits(tasks, release));
                    case "completed" when settled:
                        return new SwarmUpdateOutcome(SwarmUpdateResult.Paused, state,
                            $"Swarm says the update completed, but not every slot runs release {release}", Culprits(tasks, release));
                }
            }

            var stuck = current.Where(t => t.IsBeforeRunning && now - firstSeen[t.Id] > taskDeadline).ToList();
            if (stuck.Count > 0)
                return new SwarmUpdateOutcome(SwarmUpdateResult.Stuck, state, update?.Message,
                    stuck.Select(t => t with { Error = t.Error is { Length: > 0 } ? t.Error : $"{t.State} for over {Config.Duration.Format(taskDeadline)}{(t.Message is { Length: > 0 } m ? $", '{m}'" : "")}" }).ToList());
            // A new service with failing tasks has no update to roll back: Swarm restarts them forever.
            if (!isUpdate && tasks.Count(t => t.Release == release && t.Failed) >= Math.Max(3, replicas * 2))
                return new SwarmUpdateOutcome(SwarmUpdateResult.Paused, null, "the new service's tasks keep failing", Culprits(tasks, release));
            await Task.Delay(_poll, cancellationToken);
        }
    }

    /// <summary>The tasks of this release that failed, newest first per slot, with their reasons.</summary>
    private static List<SwarmTask> Culprits(IEnumerable<SwarmTask> tasks, string release) =>
        tasks.Where(t => t.Release == release && t.Failed)
            .GroupBy(t => t.Slot).Select(g => g.MaxBy(t => t.Created)!)
            .OrderBy(t => t.Slot).ToList();

    /// <summary>What the service looked like just before a change was posted, to tell the change's effects from earlier ones.</summary>
    public static async Task<SwarmSnapshot> SnapshotAsync(IDockerClient client, SwarmService service, CancellationToken cancellationToken) =>
        new((await ListTasksAsync(client, service.ID, cancellationToken)).Select(t => t.ID).ToHashSet(), service.UpdateStatus?.StartedAt);

    public static async Task<IList<TaskResponse>> ListTasksAsync(IDockerClient client, string serviceId, CancellationToken cancellationToken) =>
        await client.Tasks.ListAsync(new TasksListParameters
        {
            Filters = new Dictionary<string, IDictionary<string, bool>> { ["service"] = new Dictionary<string, bool> { [serviceId] = true } },
        }, cancellationToken);
}

/// <summary>A service's task ids and update start time, taken just before Cutover posts a change.</summary>
public sealed record SwarmSnapshot(IReadOnlySet<string> TaskIds, DateTime? UpdateStartedAt);
