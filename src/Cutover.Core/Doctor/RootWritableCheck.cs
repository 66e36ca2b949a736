namespace Cutover.Doctor;

/// <summary>root exists and a file can be created in it (a read-only mount or another owner's directory cannot).</summary>
public sealed class RootWritableCheck(string root) : IDoctorCheck
{
    public string Name => "root";

    public Task<DoctorFinding> RunAsync(CancellationToken cancellationToken)
    {
        if (!Directory.Exists(root))
        {
            var parent = Path.GetDirectoryName(root);
            while (parent is not null && !Directory.Exists(parent)) parent = Path.GetDirectoryName(parent);
            return Task.FromResult(parent is not null && RootProbe.TryWrite(parent, out _)
                ? DoctorFinding.Warning(Name, $"{root} does not exist yet; the first deploy creates it")
                : DoctorFinding.Error(Name, $"{root} does not exist and cannot be created under {parent ?? "/"}",
                    $"mkdir -p {root} and chown it to the user that deploys"));
        }
        return Task.FromResult(RootProbe.TryWrite(root, out var error)
            ? DoctorFinding.Ok(Name, $"{root} exists and is writable")
            : DoctorFinding.Error(Name, $"{root} is not writable: {error}",
                $"remount it read-write (or pick a root on a writable filesystem) and chown it to the user that deploys"));
    }
}

/// <summary>The probe file the root checks create and remove again: a name no release or record can have.</summary>
internal static class RootProbe
{
    public static string PathIn(string directory) => Path.Combine(directory, $".cutover-doctor-{Environment.ProcessId}");

    public static bool TryWrite(string directory, out string? error)
    {
        var probe = PathIn(directory);
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write)) { }
            File.Delete(probe);
            error = null;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            error = e.Message;
            return false;
        }
    }
}
