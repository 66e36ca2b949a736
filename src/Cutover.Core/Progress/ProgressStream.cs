using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Cutover.Progress;

/// <summary>
/// The one writer and reader of a progress stream whose "result" line is <typeparamref name="TResult"/>: the
/// closed set of <see cref="ProgressEvent"/> kinds plus that result. Reading is strict (a missing field, a null
/// where the record has none, an unknown "event") so a line from another version or another program is named as
/// such instead of being half read.
/// </summary>
public static class ProgressStream<TResult> where TResult : ResultEvent
{
    // Immutable once built (MakeReadOnly); one per result type, as System.Text.Json caches its contracts there.
    private static readonly JsonSerializerOptions Writing = Create(strict: false);
    private static readonly JsonSerializerOptions Reading = Create(strict: true);

    private static JsonSerializerOptions Create(bool strict)
    {
        var options = new JsonSerializerOptions(strict ? Json.Strict : Json.Compact)
        {
            // The compile-time contracts first (ProgressEvent's kinds and the activation's result: a reflection contract
            // costs Reflection.Emit and JIT in every short `rollback`), reflection for the other result kinds.
            // The Native AOT build has only the compiled ones: the streams it reads (the agent's) have their result there.
            TypeInfoResolver = (Platform.JitOnly.IsAvailable
                ? JsonTypeInfoResolver.Combine(Releases.AgentJsonContracts.Default, new DefaultJsonTypeInfoResolver())
                : Releases.AgentJsonContracts.Default).WithAddedModifier(AddResultKind),
        };
        options.MakeReadOnly();
        return options;
    }

    /// <summary>"result" means <typeparamref name="TResult"/> in this stream (each stream's result is its own record).</summary>
    private static void AddResultKind(JsonTypeInfo info)
    {
        if (info.Type == typeof(ProgressEvent)) info.PolymorphismOptions!.DerivedTypes.Add(new(typeof(TResult), "result"));
    }

    /// <summary>One line, without its newline.</summary>
    public static string Write(ProgressEvent e) => Json.Write(e, Writing);

    /// <summary>
    /// The event a line holds, or null with <paramref name="problem"/> saying why it is none of this stream's kinds
    /// (not JSON, an unknown "event", a field missing or of the wrong type).
    /// </summary>
    public static ProgressEvent? TryRead(string line, out string problem)
    {
        var e = Json.TryRead<ProgressEvent>(line, out problem, Reading);
        if (e is null && problem == "null") problem = "null instead of an event";
        return e;
    }
}
