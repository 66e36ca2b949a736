namespace Cutover.Containers;

/// <summary>What Cutover writes on its containers, so a restarted agent can find and adopt them.</summary>
public static class ContainerLabels
{
    public const string App = "cutover.app";
    public const string Release = "cutover.release";
    public const string Instance = "cutover.instance";
    /// <summary>The process type ("web", or a name under processes:); a container without it (made before process types) is web.</summary>
    public const string Process = "cutover.process";
    public const string Image = "cutover.image";
}

/// <summary>A release of a container app: the image it runs, kept in the release directory as IMAGE.</summary>
public static class ContainerRelease
{
    public const string ImageFile = "IMAGE";

    public static string ImageOf(string releaseDir)
    {
        var path = Path.Combine(releaseDir, ImageFile);
        return File.Exists(path) ? File.ReadAllText(path).Trim() : throw new DeployException($"{releaseDir} has no {ImageFile}: it was not deployed as a container release");
    }
}
