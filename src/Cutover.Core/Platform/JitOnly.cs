using System.Diagnostics.CodeAnalysis;

namespace Cutover.Platform;

/// <summary>
/// Whether this build holds the code that needs the JIT (reflection-based JSON, the agent's ASP.NET Core endpoints,
/// Docker.DotNet, SSH.NET, Npgsql). True in every JIT build; false in the Native AOT `cutover` (issue 14: everyday
/// commands under 100 ms), where the switch is fixed at compile time (Cutover.csproj sets it with Trim="true") so the
/// AOT compiler removes every branch it guards: the AOT binary cannot run that code at all, and a command that needs it
/// is handed to the JIT build beside it (Cli/Commands/NativeBuild) before it changes anything.
/// </summary>
public static class JitOnly
{
    public const string Switch = "Cutover.JitOnlyCode";

    [FeatureSwitchDefinition(Switch)]
    [FeatureGuard(typeof(RequiresUnreferencedCodeAttribute))]
    [FeatureGuard(typeof(RequiresDynamicCodeAttribute))]
    public static bool IsAvailable => !AppContext.TryGetSwitch(Switch, out var available) || available;
}
