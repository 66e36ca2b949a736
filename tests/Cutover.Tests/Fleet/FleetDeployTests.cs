using System.Diagnostics;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// `cutover deploy` to three real sshd hosts (127.0.0.2-4), through the real CLI and the published single-file
/// build it installs on them. Each test deploys its own app under its own root on every host.
/// </summary>
[Collection(FleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetDeployTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output, "app");

    private string Source => _bed.Source;
    private string RootOf(SshHost host) => _bed.RootOf(host);

    public void Dispose()
    {
        foreach (var host in fleet.Hosts)
        {
            if (host.Sshd is null) fleet.Start(host);
            // Remote processes of this test left behind by a killed connection (none when everything works).
            foreach (var pid in OwnedProcesses.Mentioning(RootOf(host))) Cutover.Platform.LibC.Kill(pid, 9);
        }
        _bed.Dispose();
    }

    /// <summary>Where a host keeps the config and build link of this app's root.</summary>
    private string StateDir(SshHost host, string? root = null) =>
        Path.Combine(host.Home, ".cutover", "apps", $"{_bed.App}@{Cutover.Fleet.HostAppState.RootKey(root ?? RootOf(host))}");

    private string Config(string extra = "", IEnumerable<SshHost>? hosts = null, string? knownHosts = null, Func<SshHost, string>? rootOf = null, string file = "cutover.yml")
    {
        return _bed.Config("symlink", hosts ?? fleet.Hosts, $"""
            keep_releases: 5
            fleet:
              parallel: 3
              batch: 50%
            {extra}
            """, knownHosts: knownHosts, rootOf: rootOf, file: file);
    }

    private void WriteSource(string version)
    {
        Directory.CreateDirectory(Path.Combine(Source, "assets"));
        File.WriteAllText(Path.Combine(Source, "VERSION"), version + "\n");
        File.WriteAllText(Path.Combine(Source, "index.php"), "<?php echo file_get_contents(__DIR__.'/VERSION');\n");
        File.WriteAllText(Path.Combine(Source, "assets", "app.js"), "console.log('unchanged');\n");
        File.SetLastWriteTimeUtc(Path.Combine(Source, "assets", "app.js"), new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc));
        if (!File.Exists(Path.Combine(Source, "latest"))) File.CreateSymbolicLink(Path.Combine(Source, "latest"), "VERSION");
    }

    private string AgreedRelease()
    {
        var currents = fleet.Hosts.Select(h => new FileInfo(Path.Combine(RootOf(h), "current")).LinkTarget).ToList();
        Assert.All(currents, c => Assert.NotNull(c));
        Assert.Single(currents.Distinct());
        return Path.GetFileName(currents[0]!);
    }

    private void AssertCleanAfterFailure(string live)
    {
        foreach (var host in fleet.Hosts)
        {
            Assert.Equal("releases/" + live, new FileInfo(Path.Combine(RootOf(host), "current")).LinkTarget);
            Assert.Equal([live], Directory.GetDirectories(Path.Combine(RootOf(host), "releases")).Select(Path.GetFileName));
            var uploads = Path.Combine(RootOf(host), ".cutover", "uploads");
            Assert.True(!Directory.Exists(uploads) || Directory.GetFileSystemEntries(uploads).Length == 0,
                $"{host.Name} kept uploads: {string.Join(", ", Directory.Exists(uploads) ? Directory.GetFileSystemEntries(uploads, "*", SearchOption.AllDirectories) : [])}");
        }
    }

    [Fact]
    public async Task Status_and_releases_install_nothing_write_nothing_and_need_no_local_build()
    {
        var config = Config();
        var status = await _bed.Cli("status", "-c", config);
        Assert.True(status.ExitCode == 0, status.All);
        Assert.Equal(3, status.Stdout.Split('\n').Count(l => l.Contains("nothing deployed yet")));
        var releases = await _bed.Cli("releases", "--json", "-c", config);
        Assert.True(releases.ExitCode == 0, releases.All);
        var hosts = System.Text.Json.JsonDocument.Parse(releases.Stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(3, hosts.Count);
        Assert.All(hosts, h => Assert.False(h.GetProperty("deployed").GetBoolean()));
        foreach (var host in fleet.Hosts)
        {
            Assert.False(Directory.Exists(StateDir(host)), $"{host.Name}: status wrote the app's config or link");
            Assert.False(Directory.Exists(RootOf(host)), $"{host.Name}: status created the root");
        }

        WriteSource("1");
        var deploy = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        var release = AgreedRelease();
        var written = fleet.Hosts.Select(h => File.GetLastWriteTimeUtc(Path.Combine(StateDir(h), "cutover.yml"))).ToList();
        // No build to install: status runs the cutover the deploy left on each host, with the config it wrote there.
        var after = await _bed.CliWith(_bed.CliEnvironment(_bed.Dir.Combine("no-such-build")), "status", "--json", "-c", config);
        Assert.True(after.ExitCode == 0, after.All);
        var statuses = System.Text.Json.JsonDocument.Parse(after.Stdout).RootElement.EnumerateArray().ToList();
        Assert.All(statuses, h => Assert.Equal(release, h.GetProperty("status").GetProperty("current").GetProperty("id").GetString()));
        Assert.Equal(written, fleet.Hosts.Select(h => File.GetLastWriteTimeUtc(Path.Combine(StateDir(h), "cutover.yml"))));
    }

    [Fact]
    public async Task Two_roots_of_one_app_on_the_same_hosts_keep_their_own_state_and_hosts_of_the_old_layout_still_answer()
    {
        string Staging(SshHost h) => RootOf(h) + "-staging";
        var production = Config();
        var staging = Config(rootOf: Staging, file: "staging.yml");
        WriteSource("1");
        Assert.Equal(0, (await _bed.Cli("deploy", Source, "-c", production)).ExitCode);
        var live = AgreedRelease();
        WriteSource("2");
        Assert.Equal(0, (await _bed.Cli("deploy", Source, "-c", staging)).ExitCode);
        WriteSource("3");
        Assert.Equal(0, (await _bed.Cli("deploy", Source, "-c", staging)).ExitCode);
        foreach (var host in fleet.Hosts)
        {
            Assert.True(File.Exists(Path.Combine(StateDir(host), "cutover.yml")));
            Assert.True(File.Exists(Path.Combine(StateDir(host, Staging(host)), "cutover.yml")));
            Assert.Equal("3\n", File.ReadAllText(Path.Combine(Staging(host), "current", "VERSION")));
        }

        // Production's status names production's release, not the staging one deployed after it.
        var status = await _bed.Cli("status", "--json", "-c", production);
        Assert.True(status.ExitCode == 0, status.All);
        Assert.All(System.Text.Json.JsonDocument.Parse(status.Stdout).RootElement.EnumerateArray(),
            h => Assert.Equal(live, h.GetProperty("status").GetProperty("current").GetProperty("id").GetString()));
        // Staging's rollback acts on staging only.
        var rollback = await _bed.Cli("rollback", "-c", staging);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        foreach (var host in fleet.Hosts)
        {
            Assert.Equal("2\n", File.ReadAllText(Path.Combine(Staging(host), "current", "VERSION")));
            Assert.Equal("1\n", File.ReadAllText(Path.Combine(RootOf(host), "current", "VERSION")));
        }

        // A host deployed before roots were part of the key: ~/.cutover/apps/<app>/ answers for the root it names.
        foreach (var host in fleet.Hosts) Directory.Move(StateDir(host), Path.Combine(host.Home, ".cutover", "apps", _bed.App));
        var legacy = await _bed.Cli("status", "--json", "-c", production);
        Assert.True(legacy.ExitCode == 0, legacy.All);
        Assert.All(System.Text.Json.JsonDocument.Parse(legacy.Stdout).RootElement.EnumerateArray(),
            h => Assert.Equal(live, h.GetProperty("status").GetProperty("current").GetProperty("id").GetString()));
        foreach (var host in fleet.Hosts) Directory.Delete(StateDir(host, Staging(host)), recursive: true);
        var other = await _bed.Cli("status", "-c", staging);
        Assert.Equal(3, other.Stdout.Split('\n').Count(l => l.Contains("nothing deployed yet")));
    }

    [Fact]
    public async Task An_empty_build_or_a_root_cutover_did_not_create_on_one_host_is_bad_input_and_changes_no_host()
    {
        var config = Config();
        Directory.CreateDirectory(Source);
        var empty = await _bed.Cli("deploy", Source, "-c", config);
        Assert.Equal(2, empty.ExitCode);
        Assert.Contains("holds no files", empty.Stderr);
        foreach (var host in fleet.Hosts) Assert.False(Directory.Exists(RootOf(host)), $"{host.Name}: the empty deploy touched the host");

        var foreignHost = fleet.Hosts[1];
        Directory.CreateDirectory(RootOf(foreignHost));
        File.WriteAllText(Path.Combine(RootOf(foreignHost), "index.html"), "someone else's site\n");
        WriteSource("1");
        var foreign = await _bed.Cli("deploy", Source, "-c", config);
        Assert.Equal(2, foreign.ExitCode);
        Assert.Contains("Cutover did not create it", foreign.All);
        Assert.Equal(new[] { "index.html" }, Directory.GetFileSystemEntries(RootOf(foreignHost)).Select(Path.GetFileName));
        Assert.Equal("someone else's site\n", File.ReadAllText(Path.Combine(RootOf(foreignHost), "index.html")));
        foreach (var host in fleet.Hosts) Assert.False(File.Exists(Path.Combine(RootOf(host), "current")), $"{host.Name} switched");
    }

    [Fact]
    public async Task Symlink_deploy_deploy_rollback_keeps_all_three_hosts_on_the_same_release()
    {
        var config = Config();
        WriteSource("1");
        var first = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(first.ExitCode == 0, first.All);
        var release1 = AgreedRelease();
        foreach (var host in fleet.Hosts)
        {
            Assert.Contains(host.Name, first.Stdout);
            var dir = Path.Combine(RootOf(host), "releases", release1);
            Assert.Equal("1\n", File.ReadAllText(Path.Combine(dir, "VERSION")));
            Assert.Equal("VERSION", new FileInfo(Path.Combine(dir, "latest")).LinkTarget);
            Assert.Equal(new DateTime(2026, 1, 2, 3, 4, 5, DateTimeKind.Utc), File.GetLastWriteTimeUtc(Path.Combine(dir, "assets", "app.js")));
        }
        Assert.Matches("transfer: done in .* \\(3 files sent", first.Stdout);

        WriteSource("2");
        var second = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(second.ExitCode == 0, second.All);
        var release2 = AgreedRelease();
        Assert.NotEqual(release1, release2);
        // Only the changed file travels; the unchanged ones are hard-linked to the previous release on each host.
        Assert.Matches("transfer: done in .* \\(1 files sent .*, 2 already on the host", second.Stdout);
        foreach (var host in fleet.Hosts)
        {
            Assert.Equal("2\n", File.ReadAllText(Path.Combine(RootOf(host), "current", "VERSION")));
            Assert.Equal(Posix.Inode(Path.Combine(RootOf(host), "releases", release1, "assets", "app.js")),
                Posix.Inode(Path.Combine(RootOf(host), "releases", release2, "assets", "app.js")));
        }

        var releases = await _bed.Cli("releases", "-c", config);
        Assert.True(releases.ExitCode == 0, releases.All);
        foreach (var host in fleet.Hosts) Assert.Contains(host.Name, releases.Stdout);
        var status = await _bed.Cli("status", "-c", config);
        Assert.True(status.ExitCode == 0, status.All);
        Assert.Equal(3, status.Stdout.Split('\n').Count(l => l.Contains(release2)));

        var rollback = await _bed.Cli("rollback", "-c", config);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        Assert.Equal(release1, AgreedRelease());
        Assert.Contains($"rolled back {_bed.App} to {release1} on 3 hosts", rollback.Stdout);
    }

    [Fact]
    public async Task A_build_hook_failing_on_one_host_or_a_locked_host_switches_no_host_and_removes_every_staged_release()
    {
        var config = Config("""
            hooks:
              build:
                - test ! -e "$CUTOVER_ROOT/FAIL"
            """);
        WriteSource("1");
        var first = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(first.ExitCode == 0, first.All);
        var release1 = AgreedRelease();

        var failing = fleet.Hosts[1];
        File.WriteAllText(Path.Combine(RootOf(failing), "FAIL"), "");
        WriteSource("2");
        var second = await _bed.Cli("deploy", Source, "-c", config);
        Assert.Equal(1, second.ExitCode);
        Assert.Contains($"{failing.Name}: ", second.Stderr);
        Assert.Contains("no host was switched", second.Stderr);
        AssertCleanAfterFailure(release1);

        // A host whose root another deploy holds stops the whole fleet too, with exit code 3, naming the holder.
        File.Delete(Path.Combine(RootOf(failing), "FAIL"));
        var busy = fleet.Hosts[2];
        using (await Cutover.Locking.DeployLock.AcquireAsync(new Cutover.Releases.RootLayout(RootOf(busy)), TimeSpan.Zero, "cutover deploy (someone else)", CancellationToken.None))
        {
            var locked = await _bed.Cli("deploy", Source, "-c", config);
            Assert.Equal(3, locked.ExitCode);
            Assert.Contains($"{busy.Name}: another deploy or rollback holds the lock", locked.Stderr);
            Assert.Contains("cutover deploy (someone else)", locked.Stderr);
            AssertCleanAfterFailure(release1);
        }

        // Every lock was released: the next deploy goes through on all hosts.
        var third = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(third.ExitCode == 0, third.All);
        Assert.NotEqual(release1, AgreedRelease());
    }

    [Fact]
    public async Task A_host_whose_sshd_dies_during_staging_is_named_and_no_host_switches()
    {
        var config = Config("""
            hooks:
              build:
                - if [ -e "$CUTOVER_ROOT/SLOW" ]; then touch "$CUTOVER_ROOT/hook-started"; sleep 30; fi
            """);
        WriteSource("1");
        var first = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(first.ExitCode == 0, first.All);
        var release1 = AgreedRelease();

        var dying = fleet.Hosts[1];
        File.WriteAllText(Path.Combine(RootOf(dying), "SLOW"), "");
        WriteSource("2");
        var deploy = _bed.Cli("deploy", Source, "-c", config);
        var started = Stopwatch.StartNew();
        await Wait.WithinAsync(() => File.Exists(Path.Combine(RootOf(dying), "hook-started")) || deploy.IsCompleted, TimeSpan.FromSeconds(60));
        Assert.True(File.Exists(Path.Combine(RootOf(dying), "hook-started")), "the slow hook never started");
        fleet.Kill(dying);
        var result = await deploy;
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"{dying.Name}: stopped answering", result.Stderr);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(25), "the deploy waited for the dead host's hook");

        // The live hosts were cleaned by the deployer; the dead one by its own session, once its channel closed.
        foreach (var host in fleet.Hosts.Where(h => h != dying))
        {
            Assert.Equal("releases/" + release1, new FileInfo(Path.Combine(RootOf(host), "current")).LinkTarget);
            Assert.Equal([release1], Directory.GetDirectories(Path.Combine(RootOf(host), "releases")).Select(Path.GetFileName));
        }
        Assert.Equal("releases/" + release1, new FileInfo(Path.Combine(RootOf(dying), "current")).LinkTarget);
        await Wait.WithinAsync(() => Directory.GetDirectories(Path.Combine(RootOf(dying), "releases")).Length <= 1, TimeSpan.FromSeconds(15));
        Assert.Equal([release1], Directory.GetDirectories(Path.Combine(RootOf(dying), "releases")).Select(Path.GetFileName));

        // Back up, the fleet deploys again: no lock was left behind anywhere.
        fleet.Start(dying);
        File.Delete(Path.Combine(RootOf(dying), "SLOW"));
        var again = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(again.ExitCode == 0, again.All);
        Assert.NotEqual(release1, AgreedRelease());
    }

    [Fact]
    public async Task An_unknown_host_key_is_refused_with_its_fingerprint_until_accepted_and_a_changed_key_always()
    {
        var knownHosts = _bed.Dir.Combine("known_hosts");
        var stranger = fleet.Hosts[0];
        File.WriteAllLines(knownHosts, fleet.Hosts.Skip(1).Select(h => h.KnownHostsLine()));
        var config = Config(knownHosts: knownHosts);
        WriteSource("1");

        var refused = await _bed.Cli("deploy", Source, "-c", config);
        Assert.Equal(1, refused.ExitCode);
        var blob = Convert.FromBase64String(File.ReadAllText(stranger.HostKey + ".pub").Split(' ')[1]);
        Assert.Contains($"{stranger.Name}: unknown host key ssh-ed25519 {Cutover.Fleet.KnownHosts.Fingerprint(blob)}", refused.Stderr);
        Assert.Contains("nothing was changed on any host", refused.Stderr);
        foreach (var host in fleet.Hosts) Assert.False(Directory.Exists(RootOf(host)), $"{host.Name} was changed");

        var accepted = await _bed.Cli("deploy", Source, "-c", config, "--accept-new-host-keys");
        Assert.True(accepted.ExitCode == 0, accepted.All);
        Assert.Contains(stranger.KnownHostsLine(), File.ReadAllLines(knownHosts));
        var release1 = AgreedRelease();

        // The same address now presents another key: refused, --accept-new-host-keys or not.
        var other = _bed.Dir.Combine("other_key");
        Process.Start("ssh-keygen", ["-q", "-t", "ed25519", "-f", other, "-N", ""])!.WaitForExit();
        var otherKey = File.ReadAllText(other + ".pub").Split(' ');
        File.WriteAllLines(knownHosts, fleet.Hosts.Skip(1).Select(h => h.KnownHostsLine()).Append($"[{stranger.Address}]:{stranger.Port} {otherKey[0]} {otherKey[1]}"));
        WriteSource("2");
        var changed = await _bed.Cli("deploy", Source, "-c", config, "--accept-new-host-keys");
        Assert.Equal(1, changed.ExitCode);
        Assert.Contains($"{stranger.Name}: the host key CHANGED", changed.Stderr);
        Assert.Equal(release1, AgreedRelease());
    }

    [Fact]
    [Trait(Needs.Trait, Needs.Postgres)]
    public async Task Migrations_run_once_for_the_fleet_from_the_first_host_after_every_host_prepared_never_per_host()
    {
        await using var pg = await PostgresServer.StartAsync();
        var db = await pg.CreateDatabaseAsync();
        _bed.Environment["SHOP_DB"] = db;
        Directory.CreateDirectory(_bed.Dir.Combine("db"));
        File.WriteAllText(_bed.Dir.Combine("db", "0001_users.sql"), "CREATE TABLE users (id bigint PRIMARY KEY, name text);\n");
        var config = Config("""
            migrations:
              dir: db
              database_url_env: SHOP_DB
            """);
        WriteSource("1");
        var deploy = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        AgreedRelease();
        Assert.Single(deploy.Stdout.Split('\n'), l => l.StartsWith("migrate: done", StringComparison.Ordinal));
        Assert.Equal(1L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM cutover_migrations"));
        var appliedBy = await PostgresServer.ScalarAsync<string>(db, "SELECT applied_by FROM cutover_migrations");
        Assert.Contains("fleet release", appliedBy);
        Assert.Contains($"{fleet.Hosts[0].Name} (fleet release", appliedBy); // run by the first host's session, not locally
        Assert.Contains($"{fleet.Hosts[0].Name}: applied 0001_users.sql", deploy.Stdout);
        // Before the switch: every host had staged its release when the migration ran.
        var stdout = deploy.Stdout;
        Assert.True(stdout.IndexOf("migrate: done", StringComparison.Ordinal) > fleet.Hosts.Max(h => stdout.IndexOf($"{h.Name} stage: done", StringComparison.Ordinal)));
        Assert.True(stdout.IndexOf("migrate: done", StringComparison.Ordinal) < fleet.Hosts.Min(h => stdout.IndexOf($"{h.Name} switch: done", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_host_failing_after_its_switch_takes_the_already_switched_hosts_back_and_the_rest_never_switch()
    {
        var config = Config("""
            hooks:
              after_switch:
                - test ! -e "$CUTOVER_ROOT/BAD"
            """);
        WriteSource("1");
        var first = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(first.ExitCode == 0, first.All);
        var release1 = AgreedRelease();

        // batch: 50% of three hosts = two at once: hosts 1 and 2 switch, host 2's after_switch hook fails.
        File.WriteAllText(Path.Combine(RootOf(fleet.Hosts[1]), "BAD"), "");
        WriteSource("2");
        var second = await _bed.Cli("deploy", Source, "-c", config);
        Assert.Equal(1, second.ExitCode);
        Assert.Contains($"deploy failed while switching: {fleet.Hosts[1].Name}: after_switch hook failed", second.Stderr);
        Assert.Equal(release1, AgreedRelease());
        Assert.Matches($"{System.Text.RegularExpressions.Regex.Escape(fleet.Hosts[0].Name)} +rolled back to {release1}", second.Stdout);
        Assert.Matches($"{System.Text.RegularExpressions.Regex.Escape(fleet.Hosts[2].Name)} +not switched, still on {release1}", second.Stdout);
        foreach (var host in fleet.Hosts) Assert.Equal("1\n", File.ReadAllText(Path.Combine(RootOf(host), "current", "VERSION")));
    }
}
