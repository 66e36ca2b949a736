using System.Text.Json.Serialization;
using Cutover.History;
using Cutover.Locking;

namespace Cutover.Releases;

/// <summary>
/// Compile-time JSON contracts for what every `status`, `releases` and `rollback` reads and writes: the release
/// records, history lines and the lock holder. Json's options look here first and fall back to reflection for every
/// other type. Reflection builds each contract at run time with Reflection.Emit: 291 of the 705 methods a precompiled
/// `cutover status` still had to JIT (issue 14). Same naming as <see cref="Json"/>'s options.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DictionaryKeyPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ReleaseRecord))]
[JsonSerializable(typeof(HistoryEntry))]
[JsonSerializable(typeof(LockHolder))]
internal sealed partial class JsonContracts : JsonSerializerContext;

/// <summary>
/// The same for what `status` and `rollback` of an agent app read and send: the agent's answers, the activate request
/// and the progress events of its stream (ProgressStream adds its result kind to these). A context of its own, so the
/// records' context stays as small as a symlink root's commands need (one context's types share metadata: a bool
/// here made every `status` JIT the bool property metadata for ReleaseRecord's ignored IsComplete, 29 methods).
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DictionaryKeyPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(List<Agent.AppView>))]
[JsonSerializable(typeof(Agent.AgentInfo))]
[JsonSerializable(typeof(Agent.AgentRefusal))]
[JsonSerializable(typeof(Agent.AppStopped))]
[JsonSerializable(typeof(Agent.AppStarted))]
[JsonSerializable(typeof(Agent.AgentServer.ActivateRequest))]
[JsonSerializable(typeof(Progress.ProgressEvent))]
[JsonSerializable(typeof(Deploy.ActivationResultEvent))]
internal sealed partial class AgentJsonContracts : JsonSerializerContext;
