using System.Text.Json.Serialization;

namespace Cutover.Progress;

/// <summary>
/// One NDJSON line of a progress stream: what <see cref="JsonProgress"/> writes for `--json`, what the agent streams
/// back from `activate` and what a fleet host's `remote session` streams back per request. The closed set of kinds
/// is named by the "event" field; a stream ends with its own <see cref="ResultEvent"/> (or a <see cref="CommandFailed"/>),
/// registered per stream by <see cref="ProgressStream{TResult}"/>. The same records are written and read, so the
/// two sides of a pipe cannot drift apart by a property name.
/// </summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "event")]
[JsonDerivedType(typeof(PhaseStarted), "phase_started")]
[JsonDerivedType(typeof(PhaseCompleted), "phase_completed")]
[JsonDerivedType(typeof(PhaseFailed), "phase_failed")]
[JsonDerivedType(typeof(Output), "output")]
[JsonDerivedType(typeof(Info), "info")]
[JsonDerivedType(typeof(Warning), "warning")]
[JsonDerivedType(typeof(Batch), "batch")]
[JsonDerivedType(typeof(CommandFailed), "error")]
public abstract record ProgressEvent
{
    public sealed record PhaseStarted(string Phase) : ProgressEvent;

    /// <param name="Seconds">Rounded to 0.1 ms, as people read them.</param>
    public sealed record PhaseCompleted(string Phase, double Seconds, string? Detail) : ProgressEvent;

    public sealed record PhaseFailed(string Phase, double Seconds, string Error) : ProgressEvent;

    /// <summary>A line a hook (or a migration) printed.</summary>
    public sealed record Output(string Phase, string Line) : ProgressEvent;

    public sealed record Info(string Message) : ProgressEvent;

    public sealed record Warning(string Message) : ProgressEvent;

    /// <summary>A step of a rolling update's batch (see <see cref="IDeployProgress.Batch"/>).</summary>
    public sealed record Batch(string Process, int Number, int Of, BatchStep Step) : ProgressEvent;

    /// <summary>
    /// The command failed before it had a result (bad input, a held lock, an environment failure): the last line of
    /// `--json` then. <paramref name="Kind"/> is config, usage, artifact, input, locked, failed or cancelled.
    /// </summary>
    public sealed record CommandFailed(string Kind, IReadOnlyList<string> Errors) : ProgressEvent;

    /// <summary>Replays a progress line on a renderer; results and errors are the reader's to act on, not progress.</summary>
    public void ReplayOn(IDeployProgress progress)
    {
        switch (this)
        {
            case PhaseStarted e: progress.PhaseStarted(e.Phase); break;
            case PhaseCompleted e: progress.PhaseCompleted(e.Phase, TimeSpan.FromSeconds(e.Seconds), e.Detail); break;
            case PhaseFailed e: progress.PhaseFailed(e.Phase, TimeSpan.FromSeconds(e.Seconds), e.Error); break;
            case Output e: progress.Output(e.Phase, e.Line); break;
            case Info e: progress.Info(e.Message); break;
            case Warning e: progress.Warning(e.Message); break;
            case Batch e: progress.Batch(e.Process, e.Number, e.Of, e.Step); break;
        }
    }

    internal static double Round(TimeSpan elapsed) => Math.Round(elapsed.TotalSeconds, 4);
}

/// <summary>The "result" line that ends one stream; each stream has its own derived record (see <see cref="ProgressStream{TResult}"/>).</summary>
public abstract record ResultEvent : ProgressEvent;
