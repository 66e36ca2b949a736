using Cutover.Agent;
using Cutover.Tests.Support;

namespace Cutover.Tests.Rolling;

/// <summary>
/// The agent watches no files it does not read. ASP.NET Core's default host watched its content root, the working
/// directory the agent inherited from `cutover deploy`, recursively (appsettings.json with reload on change): one inotify
/// watch per directory below it, 15,900 for an agent started from /tmp (Platform/UnwatchedWebHost).
/// </summary>
[Collection(Serial.Name)]
public sealed class AgentFileWatchTests
{
    [Fact]
    public async Task An_agent_started_in_a_deep_working_directory_watches_none_of_it()
    {
        using var bed = new AgentBed();
        // The working directory of every command of the bed, and so of the agent the deploy starts.
        const int directories = 60;
        for (var i = 0; i < directories; i++) Directory.CreateDirectory(bed.Combine(Path.Combine("tree", $"d{i / 10}", $"e{i}")));
        bed.WriteVersion("1");
        var deployed = await bed.Cli("deploy", bed.Source, "-c", bed.WriteNodeConfig(HealthServer.FreePort(), "rolling"));
        Assert.True(deployed.ExitCode == 0, deployed.All);
        // The agent runs its control host and, with the app deployed, a listener's host: the hosts there are.
        var pid = int.Parse(File.ReadAllText(Path.Combine(bed.Home, "agent.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(await new AgentClient(new AgentHome(bed.Home)).IsRunningAsync(CancellationToken.None));
        var watches = InotifyWatches(pid);
        Assert.True(watches < directories, $"the agent holds {watches} inotify watches (its working directory has {directories + 7} directories)");
    }

    /// <summary>Every inotify watch the process holds, over all its inotify descriptors (/proc/PID/fdinfo).</summary>
    private static int InotifyWatches(int pid) => Directory.EnumerateFiles($"/proc/{pid}/fd")
        .Where(fd => new FileInfo(fd).LinkTarget == "anon_inode:inotify")
        .Sum(fd => File.ReadLines($"/proc/{pid}/fdinfo/{Path.GetFileName(fd)}").Count(line => line.StartsWith("inotify wd:", StringComparison.Ordinal)));
}
