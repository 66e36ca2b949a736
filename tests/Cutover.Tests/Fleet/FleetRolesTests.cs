using System.Diagnostics;
using System.Text.Json;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// Roles across real sshd hosts: migrations on the primary only, --hosts/--roles narrowing deploy, rollback and
/// status; then `logs` and `exec` on every host of a rolling app (each host its own agent).
/// </summary>
[Collection(FleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetRolesTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output, "roles");
    private SshHost Web => fleet.Hosts[0];
    private SshHost Jobs => fleet.Hosts[1];
    private IEnumerable<SshHost> Hosts => [Web, Jobs];
    private string RootOf(SshHost host) => _bed.RootOf(host);
    private string Source => _bed.Source;

    public void Dispose()
    {
        foreach (var host in Hosts) host.KillAgent();
        _bed.KillLeftovers(Hosts);
        _bed.Dispose();
    }

    /// <summary>web1 carries web; jobs1 carries worker and is the primary, though listed second.</summary>
    private string SymlinkConfig(string extra = "")
    {
        return _bed.Config("symlink", Hosts, extra, h => h == Web ? ", roles: [web]" : ", roles: [worker], primary: true");
    }

    private void WriteSource(string version)
    {
        Directory.CreateDirectory(Source);
        File.WriteAllText(Path.Combine(Source, "VERSION"), version + "\n");
    }

    private string? CurrentOf(SshHost host) => new FileInfo(Path.Combine(RootOf(host), "current")).LinkTarget is { } target ? Path.GetFileName(target) : null;

    [Fact]
    [Trait(Needs.Trait, Needs.Postgres)]
    public async Task Migrations_run_once_on_the_primary_host_and_a_deploy_that_leaves_it_out_is_refused()
    {
        await using var pg = await PostgresServer.StartAsync();
        var db = await pg.CreateDatabaseAsync();
        _bed.Environment["SHOP_DB"] = db;
        Directory.CreateDirectory(_bed.Dir.Combine("db"));
        File.WriteAllText(_bed.Dir.Combine("db", "0001_users.sql"), "CREATE TABLE users (id bigint PRIMARY KEY);\n");
        var config = SymlinkConfig("migrations:\n  dir: db\n  database_url_env: SHOP_DB\n");
        WriteSource("1");
        var deploy = await _bed.Cli("deploy", Source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        // The migration records who ran it: the primary's session, not the first host's.
        var appliedBy = await PostgresServer.ScalarAsync<string>(db, "SELECT applied_by FROM cutover_migrations");
        Assert.StartsWith($"{Jobs.Name} (fleet release", appliedBy);
        Assert.Contains($"migrate: done", deploy.Stdout);
        Assert.Contains($"on {Jobs.Name}: applied 0001_users.sql", deploy.Stdout);
        var live = CurrentOf(Web);

        File.WriteAllText(_bed.Dir.Combine("db", "0002_orders.sql"), "CREATE TABLE orders (id bigint PRIMARY KEY);\n");
        WriteSource("2");
        var narrowed = await _bed.Cli("deploy", Source, "--hosts", Web.Name, "-c", config);
        Assert.Equal(2, narrowed.ExitCode);
        Assert.Contains($"error: migrations run on the primary host {Jobs.Name}, which this deploy leaves out", narrowed.Stderr);
        Assert.Equal(1L, await PostgresServer.ScalarAsync<long>(db, "SELECT count(*) FROM cutover_migrations"));
        Assert.Equal(live, CurrentOf(Web));
        Assert.Single(Directory.GetDirectories(Path.Combine(RootOf(Web), "releases")));
    }

    [Fact]
    public async Task A_deploy_narrowed_by_hosts_says_the_fleet_is_mixed_and_status_and_rollback_narrow_the_same_way()
    {
        var config = SymlinkConfig();
        WriteSource("1");
        Assert.Equal(0, (await _bed.Cli("deploy", Source, "-c", config)).ExitCode);
        var first = CurrentOf(Web);
        Assert.Equal(first, CurrentOf(Jobs));

        WriteSource("2");
        var narrowed = await _bed.Cli("deploy", Source, "--hosts", Web.Name, "-c", config);
        Assert.True(narrowed.ExitCode == 0, narrowed.All);
        var second = CurrentOf(Web);
        Assert.NotEqual(first, second);
        Assert.Equal(first, CurrentOf(Jobs));
        var warning = Assert.Single(narrowed.All.Split('\n'), l => l.Contains("the fleet is now mixed"));
        Assert.Contains($"{Web.Name} runs {second}", warning);
        Assert.Contains($"{Jobs.Name} still runs {first}", warning);

        var byRole = await _bed.Cli("status", "--roles", "worker", "--json", "-c", config);
        Assert.True(byRole.ExitCode == 0, byRole.All);
        var entry = Assert.Single(JsonDocument.Parse(byRole.Stdout).RootElement.EnumerateArray());
        Assert.Equal(Jobs.Name, entry.GetProperty("host").GetString());
        Assert.Equal(["worker"], entry.GetProperty("roles").EnumerateArray().Select(r => r.GetString()));
        Assert.Equal(first, entry.GetProperty("status").GetProperty("current").GetProperty("id").GetString());
        var table = await _bed.Cli("status", "--roles", "web", "-c", config);
        Assert.Contains(Web.Name, table.Stdout);
        Assert.DoesNotContain(Jobs.Name, table.Stdout);

        var unknown = await _bed.Cli("status", "--roles", "db", "-c", config);
        Assert.Equal(2, unknown.ExitCode);
        Assert.Contains("error: --roles: no host has the role 'db'; the roles of this fleet are web, worker", unknown.Stderr);

        // Rollback of web1 alone: it agrees with itself on the target, and jobs1 is not asked or touched.
        var rollback = await _bed.Cli("rollback", "--roles", "web", "-c", config);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        Assert.Equal(first, CurrentOf(Web));
        Assert.Equal(first, CurrentOf(Jobs));
        Assert.DoesNotContain("mixed", rollback.All); // every host is on one release again
    }

    [Fact]
    public async Task Logs_and_exec_reach_every_host_merged_in_time_order_and_with_the_apps_environment_in_its_live_release()
    {
        var ports = Hosts.ToDictionary(h => h, _ => Cutover.Platform.LoopbackPort.Free());
        var config = _bed.NodeConfig(Hosts, ports, instances: 2, run: "env:\n  GREETING: hello-from-config");
        _bed.CopyNodeApp();
        foreach (var version in new[] { "1", "2" })
        {
            File.WriteAllText(Path.Combine(Source, "VERSION"), version);
            var deploy = await _bed.Cli("deploy", Source, "-c", config);
            Assert.True(deploy.ExitCode == 0, deploy.All);
        }
        // A line from an hour ago on web1 (a rotated file): the oldest line of the fleet, and outside --since 10m.
        var old = DateTimeOffset.UtcNow.AddHours(-1).ToString("yyyy-MM-ddTHH:mm:ss.fffZ");
        File.WriteAllText(Path.Combine(Web.AgentHome, "logs", _bed.App, "0-rotated.log"), $"{old} {_bed.App}-0 1 out an hour ago\n");

        var logs = await _bed.Cli("logs", "-n", "1000", "-c", config);
        Assert.True(logs.ExitCode == 0, logs.All);
        var lines = logs.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var width = Hosts.Max(h => h.Name.Length);
        Assert.All(lines, l => Assert.True(l.StartsWith(Web.Name.PadRight(width) + "  ", StringComparison.Ordinal) || l.StartsWith(Jobs.Name.PadRight(width) + "  ", StringComparison.Ordinal), l));
        Assert.EndsWith("an hour ago", lines[0]);
        var times = lines.Select(l => DateTimeOffset.Parse(l[(width + 2)..].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(times.Order(), times);
        foreach (var host in Hosts)
            Assert.Equal(2, lines.Count(l => l.StartsWith(host.Name, StringComparison.Ordinal) && l.EndsWith("version 2", StringComparison.Ordinal)));

        var grep = await _bed.Cli("logs", "--grep", "version 1", "-c", config);
        Assert.True(grep.ExitCode == 0, grep.All);
        var grepped = grep.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, grepped.Length);
        Assert.All(grepped, l => Assert.EndsWith("version 1", l));

        var since = await _bed.Cli("logs", "--since", "10m", "--json", "-c", config);
        Assert.True(since.ExitCode == 0, since.All);
        var recent = since.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.DoesNotContain(recent, l => l.GetProperty("text").GetString() == "an hour ago");
        Assert.Equal(lines.Length - 1, recent.Count);
        Assert.Equal(new[] { Jobs.Name, Web.Name }.Order(), recent.Select(l => l.GetProperty("host").GetString()!).Distinct().Order());

        // -f: both hosts at once; a line written on jobs1 shows up; Ctrl-C ends it and every host's command with it.
        var seen = new List<string>();
        var start = CutoverCli.StartInfo(_bed.Dir.Path, "logs", "-f", "-n", "0", "-c", config);
        using var follow = CutoverCli.Start(start, l => { lock (seen) seen.Add(l); });
        await Wait.UntilAsync(() => RemoteLogsProcesses().Count == 2, TimeSpan.FromSeconds(30), "both hosts' `cutover logs --remote -f`");
        // Written until it shows: the process being there does not mean it has reached the end of the file yet.
        await Wait.UntilAsync(() =>
        {
            lock (seen)
                if (seen.Any(l => l.StartsWith(Jobs.Name, StringComparison.Ordinal) && l.EndsWith("followed line"))) return true;
            File.AppendAllText(Path.Combine(Jobs.AgentHome, "logs", _bed.App, "current.log"), $"{DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ss.fffZ} {_bed.App}-1 1 out followed line\n");
            return false;
        }, TimeSpan.FromSeconds(15), "the new line through -f", interval: TimeSpan.FromMilliseconds(500));
        Cutover.Platform.LibC.Kill(follow.Id, 2);
        Assert.True(follow.WaitForExit(TimeSpan.FromSeconds(15)), "logs -f did not end on SIGINT");
        Assert.Equal(0, follow.ExitCode);
        await Wait.UntilAsync(() => RemoteLogsProcesses().Count == 0, TimeSpan.FromSeconds(15), "the hosts' `cutover logs` to end with the SSH channels");

        var exec = await _bed.Cli("exec", "-c", config, "--", "echo \"$GREETING $PWD\"");
        Assert.True(exec.ExitCode == 0, exec.All);
        foreach (var host in Hosts)
        {
            var release = Path.Combine(RootOf(host), "releases", CurrentOf(host)!);
            Assert.Contains($"{host.Name.PadRight(width)}  hello-from-config {release}", exec.Stdout.Split('\n'));
        }
        var one = await _bed.Cli("exec", "--hosts", Jobs.Name, "-c", config, "--", "sh", "-c", "echo only; exit 3");
        Assert.Equal(3, one.ExitCode);
        Assert.Equal("only\n", one.Stdout);
        Assert.Equal(127, (await _bed.Cli("exec", "--primary", "-c", config, "--", "no-such-command")).ExitCode);
        var second = await _bed.Cli("exec", "-c", config, "--", $"case \"$PWD\" in *{Path.GetFileName(Jobs.Dir)}/*) exit 4;; esac");
        Assert.Equal(4, second.ExitCode);
        Assert.Contains($"error: exit 4, from {Jobs.Name}", second.Stderr);
        var terminal = await _bed.Cli("exec", "-it", "-c", config, "--", "bash");
        Assert.Equal(2, terminal.ExitCode);
        Assert.Contains("-it gives one command a terminal", terminal.Stderr);

        // -it on one host: a real terminal there (ssh -t), here one from script(1); the exit status comes back through ssh.
        var tty = await InTerminalAsync($"exec -it --hosts {Jobs.Name} -c {config} -- sh -c 'tty; exit 5'");
        Assert.Equal(5, tty.ExitCode);
        Assert.Matches(@"(^|\W)/dev/pts/\d+\r?\n", tty.Stdout);
    }

    /// <summary>Runs the CLI under script(1), which gives it a pseudo-terminal as a person's shell would.</summary>
    private async Task<CliResult> InTerminalAsync(string arguments)
    {
        var start = new ProcessStartInfo("script", ["-qec", $"dotnet {CutoverCli.Dll} {arguments}", "/dev/null"])
        {
            WorkingDirectory = _bed.Dir.Path,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        var result = new CliResult(process.ExitCode, await stdout, await stderr);
        output.WriteLine($"$ script cutover {arguments}  (exit {result.ExitCode})\n{result.All}");
        return result;
    }

    /// <summary>The hosts' `cutover logs --remote` processes of this app, found by their command lines.</summary>
    private List<int> RemoteLogsProcesses() =>
        OwnedProcesses.Mentioning(_bed.App).Where(pid =>
        {
            try
            {
                var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0');
                return args.Contains("logs") && args.Contains("--remote");
            }
            catch (IOException)
            {
                return false;
            }
        }).ToList();
}
