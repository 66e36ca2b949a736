using System.Text.Json.Serialization;
using Cutover.History;
using Cutover.Locking;

namespace Cutover.Releases;

/// <summary>
/// Compile-time JSON contracts for what every `status`, `releases` and `rollback` reads and writes: the release
/// records, history lines and the lock holder. Json's options look here first and fall back to reflection for every
/// other type. Reflection builds each contract at run time with Reflection.Emit: 291 of the 705 methods a precompiled
/// `cutover status` still had to JIT (issue 14). Same naming as <see cref="Json"/>'s options. The agent's answers that
/// `status` and `rollback` of an agent app read (and the activate request they send, and the progress events of its
/// stream: ProgressStream adds its result kind to these) are here for the same reason.
/// </summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DictionaryKeyPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    UseStringEnumConverter = true)]
[JsonSerializable(typeof(ReleaseRecord))]
[JsonSerializable(typeof(HistoryEntry))]
[JsonSerializable(typeof(LockHolder))]
[JsonSerializable(typeof(List<Agent.AppView>))]
[JsonSerializable(typeof(Agent.AgentInfo))]
[JsonSerializable(typeof(Agent.AgentRefusal))]
[JsonSerializable(typeof(Agent.AppStopped))]
[JsonSerializable(typeof(Agent.AppStarted))]
[JsonSerializable(typeof(Agent.AgentServer.ActivateRequest))]
[JsonSerializable(typeof(Progress.ProgressEvent))]
[JsonSerializable(typeof(Deploy.ActivationResultEvent))]
internal sealed partial class JsonContracts : JsonSerializerContext;
