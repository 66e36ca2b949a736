using System.Text;
using System.Text.Json;
using Cutover.Tests.Rolling;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// `cutover deploy --env-only` with hosts: every host makes a new release of its live release's files (hard links) with the
/// environment resolved now, under one release id, rolled out through the fleet pipeline with no request failing; a fleet
/// whose hosts run different releases is refused unless --hosts narrows it to hosts that agree.
/// </summary>
[Collection(SecondFleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetEnvOnlyTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output, "envonly");
    private IReadOnlyList<SshHost> Hosts => fleet.Hosts.Take(2).ToList();
    private string RootOf(SshHost host) => _bed.RootOf(host);

    public void Dispose()
    {
        foreach (var host in Hosts)
        {
            host.KillAgent();
            foreach (var orphan in OwnedProcesses.Mentioning(host.Root)) Cutover.Platform.LibC.Kill(orphan, 9);
        }
        _bed.Dispose();
    }

    private string? Live(SshHost host) => new FileInfo(Path.Combine(RootOf(host), "current")).LinkTarget is { } target ? Path.GetFileName(target) : null;

    /// <summary>API_TOKEN as each process running in the host's releases (cwd under releases/) has it in /proc/&lt;pid&gt;/environ.</summary>
    private IReadOnlyList<string> InstanceTokens(SshHost host)
    {
        var releases = Path.Combine(RootOf(host), "releases") + "/";
        var tokens = new List<string>();
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out _)) continue;
            try
            {
                if (new FileInfo(Path.Combine(dir, "cwd")).LinkTarget is not { } cwd || !cwd.StartsWith(releases, StringComparison.Ordinal)) continue;
                var environ = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                tokens.Add(environ.FirstOrDefault(e => e.StartsWith("API_TOKEN=", StringComparison.Ordinal)) ?? "(none)");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The process ended while it was read.
            }
        }
        return tokens;
    }

    [Fact]
    public async Task Env_only_rolls_every_host_onto_the_new_environment_as_one_hard_linked_release_and_refuses_a_mixed_fleet()
    {
        var ports = Hosts.ToDictionary(h => h, _ => Cutover.Platform.LoopbackPort.Free());
        var config = _bed.NodeConfig(Hosts, ports, instances: 2, monitor: "200ms", body: "env_file: .env");
        var tokenA = "tok-a-" + Guid.NewGuid().ToString("N")[..12];
        var tokenB = "tok-b-" + Guid.NewGuid().ToString("N")[..12];
        File.WriteAllText(_bed.Dir.Combine(".env"), $"API_TOKEN={tokenA}\n");
        var source = _bed.Dir.Combine("src");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "server.js"), AppEnvironmentAgentTests.App);
        File.WriteAllText(Path.Combine(source, "VERSION"), "v1");
        Task<CliResult> Cli(params string[] args) => _bed.Cli([.. args, "-c", config]);

        var first = await Cli("deploy", source);
        Assert.True(first.ExitCode == 0, first.All);
        var releaseA = Live(Hosts[0])!;
        Assert.Equal(releaseA, Live(Hosts[1]));

        // The new environment; the source changes too, and --env-only must not deploy it.
        File.WriteAllText(_bed.Dir.Combine(".env"), $"API_TOKEN={tokenB}\n");
        File.WriteAllText(Path.Combine(source, "VERSION"), "v2-not-deployed");
        var loads = Hosts.Select(h => new LoadGenerator($"http://127.0.0.1:{ports[h]}/", connections: 4, maxDuration: TimeSpan.FromMinutes(2))).ToList();
        CliResult envOnly;
        var samples = new List<Sample>();
        try
        {
            await Task.Delay(300);
            envOnly = await Cli("deploy", "--env-only");
            await Task.Delay(300);
        }
        finally
        {
            foreach (var load in loads)
            {
                samples.AddRange(await load.StopAsync());
                await load.DisposeAsync();
            }
        }
        output.WriteLine($"env-only: exit {envOnly.ExitCode}\n{envOnly.All}\n{samples.Count} requests, {samples.Count(s => s.Status != 200)} failed");
        Assert.True(envOnly.ExitCode == 0, envOnly.All);
        Assert.NotEmpty(samples);
        Assert.Equal(0, samples.Count(s => s.Status != 200));
        Assert.DoesNotContain(tokenB, envOnly.All, StringComparison.Ordinal);
        Assert.DoesNotContain("transfer", envOnly.Stdout, StringComparison.Ordinal);

        var releaseB = Live(Hosts[0])!;
        Assert.NotEqual(releaseA, releaseB);
        Assert.Equal(releaseB, Live(Hosts[1]));
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var web = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        foreach (var host in Hosts)
        {
            Assert.Equal(new AppEnvironmentAgentTests.Seen("v1", tokenB, null, null, null),
                JsonSerializer.Deserialize<AppEnvironmentAgentTests.Seen>(await http.GetStringAsync($"http://127.0.0.1:{ports[host]}/"), web));
            // Wait for the drained old instances to go: then every process in the releases has the new value.
            Assert.True(Wait.Within(() => InstanceTokens(host) is { Count: > 0 } t && t.All(v => v == $"API_TOKEN={tokenB}"), TimeSpan.FromSeconds(20)),
                $"{host.Name}: {string.Join(", ", InstanceTokens(host))}");
            foreach (var file in new[] { "server.js", "VERSION" })
                Assert.Equal(Posix.Inode(Path.Combine(RootOf(host), "releases", releaseA, file)), Posix.Inode(Path.Combine(RootOf(host), "releases", releaseB, file)));

            // The secret is in the release's 0600 env file and nowhere else on the host.
            var envFile = Path.Combine(RootOf(host), ".cutover", "env", releaseB + ".env");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(envFile));
            Assert.Contains(tokenB, File.ReadAllText(envFile), StringComparison.Ordinal);
            foreach (var file in Directory.EnumerateFiles(host.Dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                if (file == envFile) continue;
                string text;
                try { text = Encoding.UTF8.GetString(File.ReadAllBytes(file)); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
                Assert.False(text.Contains(tokenB, StringComparison.Ordinal), $"{file} holds the secret");
            }
        }

        // Rollback: every host runs environment A again.
        var rollback = await Cli("rollback");
        Assert.True(rollback.ExitCode == 0, rollback.All);
        foreach (var host in Hosts)
            Assert.Equal(tokenA, JsonSerializer.Deserialize<AppEnvironmentAgentTests.Seen>(await http.GetStringAsync($"http://127.0.0.1:{ports[host]}/"), web)!.Token);

        // A mixed fleet (a build deployed to the first host only): refused, naming who runs what; nothing changes.
        var narrowed = await Cli("deploy", source, "--hosts", Hosts[0].Name);
        Assert.True(narrowed.ExitCode == 0, narrowed.All);
        var onFirst = Live(Hosts[0])!;
        var onSecond = Live(Hosts[1])!;
        Assert.NotEqual(onFirst, onSecond);
        var mixed = await Cli("deploy", "--env-only");
        output.WriteLine($"mixed: exit {mixed.ExitCode}\n{mixed.All}");
        Assert.Equal(2, mixed.ExitCode);
        Assert.Contains($"{onFirst} on {Hosts[0].Name}", mixed.Stderr, StringComparison.Ordinal);
        Assert.Contains($"{onSecond} on {Hosts[1].Name}", mixed.Stderr, StringComparison.Ordinal);
        Assert.Equal(onFirst, Live(Hosts[0]));
        Assert.Equal(onSecond, Live(Hosts[1]));
        Assert.DoesNotContain(Hosts.SelectMany(h => Directory.GetDirectories(Path.Combine(RootOf(h), "releases"))), d => Path.GetFileName(d).StartsWith(".", StringComparison.Ordinal));

        // Narrowed to a host that agrees with itself: that host alone rolls onto the environment.
        var one = await Cli("deploy", "--env-only", "--hosts", Hosts[1].Name);
        Assert.True(one.ExitCode == 0, one.All);
        Assert.NotEqual(onSecond, Live(Hosts[1]));
        Assert.Equal(onFirst, Live(Hosts[0]));
        Assert.Equal(tokenB, JsonSerializer.Deserialize<AppEnvironmentAgentTests.Seen>(await http.GetStringAsync($"http://127.0.0.1:{ports[Hosts[1]]}/"), web)!.Token);
    }

    [Fact]
    public async Task Env_only_on_hosts_with_nothing_live_is_refused_naming_them_and_writes_nothing()
    {
        var config = _bed.Config("symlink", Hosts);
        var refused = await _bed.Cli("deploy", "--env-only", "-c", config);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains($"nothing is live on {Hosts[0].Name}, {Hosts[1].Name}", refused.Stderr, StringComparison.Ordinal);
        foreach (var host in Hosts) Assert.False(Directory.Exists(RootOf(host)), $"{RootOf(host)} was created");

        // Without --env-only a fleet deploy still needs its source.
        var noSource = await _bed.Cli("deploy", "-c", config);
        Assert.Equal(2, noSource.ExitCode);
        Assert.Contains("give the directory or .tar.gz", noSource.Stderr, StringComparison.Ordinal);

        // --allow-empty has nothing to allow when the hosts redeploy their live files: refused, not ignored.
        var allowEmpty = await _bed.Cli("deploy", "--env-only", "--allow-empty", "-c", config);
        Assert.Equal(2, allowEmpty.ExitCode);
        Assert.Contains("--allow-empty is for a new artifact", allowEmpty.Stderr, StringComparison.Ordinal);
    }
}
