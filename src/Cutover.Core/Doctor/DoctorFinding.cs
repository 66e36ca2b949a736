namespace Cutover.Doctor;

public enum DoctorStatus { Ok, Warning, Error }

/// <summary>One line of `cutover doctor`: what a check found and, when it is not ok, how to fix it.</summary>
public sealed record DoctorFinding(string Check, DoctorStatus Status, string Message, string? Fix = null, string? Host = null)
{
    public static DoctorFinding Ok(string check, string message) => new(check, DoctorStatus.Ok, message);
    public static DoctorFinding Warning(string check, string message, string? fix = null) => new(check, DoctorStatus.Warning, message, fix);
    public static DoctorFinding Error(string check, string message, string fix) => new(check, DoctorStatus.Error, message, fix);
}

/// <summary>One thing `cutover doctor` checks. A check reads and probes; it never changes anything live.</summary>
public interface IDoctorCheck
{
    /// <summary>The check's name as printed and in --json (`root`, `nginx`, `agent`, ...).</summary>
    string Name { get; }

    Task<DoctorFinding> RunAsync(CancellationToken cancellationToken);
}
