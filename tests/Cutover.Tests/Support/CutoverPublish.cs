namespace Cutover.Tests.Support;

/// <summary>
/// One `dotnet publish src/Cutover` at a time in the test process. Every publish of the project, whatever its
/// properties, writes the same obj/Release/net10.0/linux-x64 (ILC's inputs and outputs, the apphost): NativeBuildTests
/// and the fleet's PublishedCutover publishing at once broke the Native AOT compile ("Code generation failed") and left
/// a JIT half that could not find its runtime ("Could not resolve CoreCLR path").
/// </summary>
public static class CutoverPublish
{
    public static SemaphoreSlim Gate { get; } = new(1, 1);
}
