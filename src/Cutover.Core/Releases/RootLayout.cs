namespace Cutover.Releases;

/// <summary>Where everything lives under a deploy root: the classic releases/, shared/, current, plus .cutover/.</summary>
public sealed record RootLayout(string Root)
{
    public string Releases => Path.Combine(Root, "releases");
    public string Shared => Path.Combine(Root, "shared");
    public string Current => Path.Combine(Root, "current");
    public string State => Path.Combine(Root, ".cutover");
    public string Records => Path.Combine(State, "releases");
    public string Logs => Path.Combine(State, "logs");
    public string History => Path.Combine(State, "history.jsonl");
    public string LockFile => Path.Combine(State, "deploy.lock");
    public string LockHolder => Path.Combine(State, "deploy.lock.json");

    public string ReleaseDir(ReleaseId id) => Path.Combine(Releases, id.Value);
    public string RecordFile(ReleaseId id) => Path.Combine(Records, id.Value + ".json");
    public string LogFile(ReleaseId id) => Path.Combine(Logs, id.Value + ".log");
    /// <summary>The release's content index (path -> sha256), see Staging/ContentIndex.</summary>
    /// <summary>The release's resolved environment (secrets): 0600, outside releases/&lt;id&gt;/ so no artifact, hook copy or listing holds it.</summary>
    public string EnvFile(ReleaseId id) => Path.Combine(EnvDir, id.Value + ".env");
    public string EnvDir => Path.Combine(State, "env");
    public string ContentIndexFile(ReleaseId id) => Path.Combine(State, "hashes", id.Value + ".json");

    /// <summary>The target <c>current</c> points at, relative so the root can be moved or mounted elsewhere.</summary>
    public static string CurrentTarget(ReleaseId id) => "releases/" + id.Value;
}
