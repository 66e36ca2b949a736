namespace Cutover.Tests.Support;

/// <summary>A directory that exists for one test and is removed with everything in it afterwards.</summary>
public sealed class TempDir : IDisposable
{
    public TempDir(string prefix = "cutover-test-")
    {
        Path = Directory.CreateTempSubdirectory(prefix).FullName;
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Cutover.Releases.ReleaseStore.DeleteTree(Path);
        }
        catch (IOException)
        {
        }
    }
}
