using System.Diagnostics;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Integration;

/// <summary>
/// SIGKILLs the real CLI at more than 30 moments of a deploy (start-up, lock, staging, shared links, hooks,
/// the switch, after it, pruning). After every kill, `current` must resolve to a complete release, and the very
/// next deploy must succeed with no manual unlock or cleanup.
/// </summary>
// Not in the serial collection: no load and no timing is asserted (a slower deploy only gives the kills more to land in).
[Trait(Needs.Trait, Needs.Slow)]
[RunsFor(190)]
public class CrashSafetyTests(ITestOutputHelper output) : IDisposable
{
    private const int VendorFiles = 1500;
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static string Content(int version, int file) => file % 50 == version % 50 ? $"<?php // v{version} f{file}\n" : $"<?php // base f{file}\n";

    private void WriteVersion(string source, int version)
    {
        AppFactory.WriteHelloPhp(source, version.ToString());
        var vendor = Path.Combine(source, "vendor");
        Directory.CreateDirectory(vendor);
        for (var i = 0; i < VendorFiles; i++)
        {
            var path = Path.Combine(vendor, $"f{i}.php");
            var content = Content(version, i);
            if (!File.Exists(path) || File.ReadAllText(path) != content) File.WriteAllText(path, content);
        }
    }

    /// <summary>Every file of the version it claims to be, with that version's content, and its build output.</summary>
    private static void AssertComplete(string current, string context)
    {
        Assert.True(Directory.Exists(current), $"{context}: current does not resolve to a directory");
        var version = int.Parse(File.ReadAllText(Path.Combine(current, "VERSION")).Trim());
        Assert.True(File.Exists(Path.Combine(current, "public", "index.php")), $"{context}: public/index.php missing");
        Assert.True(File.Exists(Path.Combine(current, "BUILD_MARK")), $"{context}: build hook output missing in {current}");
        Assert.NotNull(new FileInfo(Path.Combine(current, "storage")).LinkTarget);
        for (var i = 0; i < VendorFiles; i++)
        {
            var path = Path.Combine(current, "vendor", $"f{i}.php");
            Assert.True(File.Exists(path), $"{context}: {path} missing from release of version {version}");
            Assert.Equal(Content(version, i), File.ReadAllText(path));
        }
    }

    [Fact]
    public async Task Deploys_killed_at_thirty_moments_leave_a_complete_current_and_no_stuck_lock()
    {
        var root = _dir.Combine("root");
        var source = _dir.Combine("src");
        var config = AppFactory.WriteConfig(_dir.Path, root, """
            keep_releases: 1
            shared:
              dirs: [storage]
            hooks:
              build: ["test -z \"$KILL_WINDOWS\" || sleep 0.2", "echo ok > BUILD_MARK"]
              before_switch: ["test -z \"$KILL_WINDOWS\" || sleep 0.05"]
              after_switch: ["true"]
            """);
        // The sleeps are windows for the kills to land in (build+50/120/180 ms, before_switch+20/40 ms); the deploys
        // that are not killed (the first and each one after a kill) run without them.
        var version = 1;
        WriteVersion(source, version);
        var first = await CutoverCli.RunAsync(_dir.Path, "deploy", source, "-c", config);
        Assert.True(first.ExitCode == 0, first.All);

        // (phase whose "started" line triggers the kill, or "" for time since process start; delay in ms)
        var plan = new List<(string Phase, int DelayMs)>();
        plan.AddRange(new[] { 0, 150, 300, 450 }.Select(d => ("", d)));
        plan.AddRange(new[] { 0, 2, 5, 10, 20, 40, 60, 90 }.Select(d => ("stage", d)));
        plan.AddRange(new[] { 0, 1, 3 }.Select(d => ("shared", d)));
        plan.AddRange(new[] { 0, 50, 120, 180, 250 }.Select(d => ("build", d)));
        plan.AddRange(new[] { 0, 20, 40 }.Select(d => ("before_switch", d)));
        plan.AddRange(new[] { 0, 0, 0, 1, 2 }.Select(d => ("switch", d)));
        plan.AddRange(new[] { 0, 2, 5 }.Select(d => ("after_switch", d)));
        plan.AddRange(new[] { 0, 0, 1, 2, 4, 8 }.Select(d => ("prune", d)));

        var effective = 0;
        var killedIn = new Dictionary<string, int>();
        foreach (var (phase, delay) in plan)
        {
            WriteVersion(source, ++version);
            var lastPhase = "startup";
            var killed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            Process? process = null;
            void Kill()
            {
                // The phase seen last before the kill, to show where kills landed.
                var landed = Volatile.Read(ref lastPhase);
                try
                {
                    process!.Kill();
                    killed.TrySetResult(true);
                    lock (killedIn) killedIn[landed] = killedIn.GetValueOrDefault(landed) + 1;
                }
                catch (InvalidOperationException)
                {
                    killed.TrySetResult(false); // it finished first
                }
            }
            var deploy = CutoverCli.StartInfo(_dir.Path, "deploy", source, "-c", config);
            deploy.Environment["KILL_WINDOWS"] = "1";
            process = CutoverCli.Start(deploy, line =>
            {
                if (line.EndsWith(": started", StringComparison.Ordinal)) Volatile.Write(ref lastPhase, line[..^": started".Length]);
                if (phase.Length > 0 && line == $"{phase}: started")
                {
                    if (delay == 0) Kill();
                    else _ = Task.Delay(delay).ContinueWith(_ => Kill());
                }
            });
            if (phase.Length == 0) _ = Task.Delay(delay).ContinueWith(_ => Kill());
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(1));
            killed.TrySetResult(false);
            if (await killed.Task) effective++;
            process.Dispose();

            var context = $"killed at {(phase.Length == 0 ? "start" : phase)}+{delay}ms";
            AssertComplete(Path.Combine(root, "current"), context);

            WriteVersion(source, ++version);
            var next = await CutoverCli.RunAsync(_dir.Path, "deploy", source, "-c", config);
            Assert.True(next.ExitCode == 0, $"{context}: the next deploy failed:\n{next.All}");
            Assert.Equal(version.ToString(), File.ReadAllText(Path.Combine(root, "current", "VERSION")).Trim());
            AssertComplete(Path.Combine(root, "current"), context + ", then deployed again");
        }

        output.WriteLine($"{effective} of {plan.Count} deploys killed mid-run; last phase seen at the kill: " +
                         string.Join(", ", killedIn.OrderBy(k => k.Key).Select(k => $"{k.Key} {k.Value}")));
        Assert.True(effective >= 30, $"only {effective} kills landed before the deploy finished");
        foreach (var phase in new[] { "stage", "build", "switch", "prune" })
            Assert.True(killedIn.ContainsKey(phase), $"no kill landed in {phase}: {string.Join(", ", killedIn.Keys)}");

        // Nothing half-made is left behind: every release directory has a record, and no temp links remain.
        var releases = Directory.GetDirectories(Path.Combine(root, "releases")).Select(Path.GetFileName).ToList();
        Assert.DoesNotContain(releases, r => r!.StartsWith(".trash-"));
        Assert.Empty(Directory.GetFileSystemEntries(root, ".current.*"));
        Assert.True(releases.Count <= 3, $"pruning left {releases.Count} releases: {string.Join(", ", releases)}");
    }
}
