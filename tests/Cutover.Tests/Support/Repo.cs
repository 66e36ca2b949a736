namespace Cutover.Tests.Support;

/// <summary>The repository the tests were built from, for examples that are built during a test.</summary>
public static class Repo
{
    public static string Root
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Cutover.slnx"))) return dir.FullName;
            throw new InvalidOperationException("cannot find Cutover.slnx above " + AppContext.BaseDirectory);
        }
    }
}
