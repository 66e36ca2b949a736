using Docker.DotNet.Models;

namespace Cutover.Swarm;

/// <summary>One Swarm task as Cutover reports it: its slot, state, image and, when it ended badly, why.</summary>
public sealed record SwarmTask(
    string Id,
    long Slot,
    string State,
    string DesiredState,
    string Image,
    string? Release,
    string? Error,
    string? Message,
    long? ExitCode,
    string? ContainerId,
    DateTimeOffset Created,
    DateTimeOffset StateSince)
{
    /// <summary>States before running: Swarm never counts a task in one of these as failed, however long it stays.</summary>
    public bool IsBeforeRunning => State is "new" or "allocated" or "pending" or "assigned" or "accepted" or "preparing" or "ready" or "starting";

    public bool IsRunning => State == "running";

    /// <summary>
    /// Ended on its own rather than being stopped: failed (a non-zero exit, an unhealthy container), rejected,
    /// orphaned, or exited 0 while meant to run (Swarm counts that as a failure too). A task Swarm shut down is not
    /// failed, whatever its exit code: tini passes on SIGTERM, so a normal stop exits 143.
    /// </summary>
    public bool Failed => State is "failed" or "rejected" or "orphaned" || (State == "complete" && DesiredState == "running");

    /// <summary>Why, in Docker's own words, plus the exit code when there is one.</summary>
    public string Reason
    {
        get
        {
            var parts = new List<string>();
            if (Error is { Length: > 0 }) parts.Add(Error);
            else if (Message is { Length: > 0 }) parts.Add(Message);
            if (ExitCode is { } code && code != 0 && Error?.Contains($"({code})", StringComparison.Ordinal) != true) parts.Add($"exit code {code}");
            return parts.Count == 0 ? State : string.Join("; ", parts);
        }
    }

    public static SwarmTask From(TaskResponse task)
    {
        var labels = task.Spec?.ContainerSpec?.Labels;
        return new SwarmTask(
            task.ID,
            task.Slot ?? 0,
            Name(task.Status?.State),
            Name(task.DesiredState),
            ShortImage(task.Spec?.ContainerSpec?.Image ?? ""),
            labels is not null && labels.TryGetValue(SwarmSpecBuilder.ReleaseLabel, out var release) ? release : null,
            task.Status?.Err,
            task.Status?.Message,
            task.Status?.ContainerStatus?.ExitCode,
            task.Status?.ContainerStatus?.ContainerID,
            Utc(task.CreatedAt),
            Utc(task.Status?.Timestamp ?? task.UpdatedAt));
    }

    private static string Name(TaskState? state) => state?.ToString().ToLowerInvariant() ?? "unknown";

    private static DateTimeOffset Utc(DateTime? time) =>
        time is null ? DateTimeOffset.MinValue : new DateTimeOffset(DateTime.SpecifyKind(time.Value.ToUniversalTime(), DateTimeKind.Utc));

    /// <summary>Swarm pins images by digest (name:tag@sha256:...); people know them by name:tag.</summary>
    public static string ShortImage(string image)
    {
        var at = image.IndexOf('@', StringComparison.Ordinal);
        return at < 0 ? image : image[..at];
    }
}
