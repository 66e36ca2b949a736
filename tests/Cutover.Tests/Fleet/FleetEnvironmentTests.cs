using System.Text;
using System.Text.Json;
using Cutover.Tests.Rolling;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// env_file and ${VAR} with hosts: each host's instances get the values, which on the host live only in the release's
/// 0600 env file outside the release directory: not in the host's cutover.yml, not in the handed-over file (deleted
/// once read), not in any log, record or state file.
/// </summary>
[Collection(FleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetEnvironmentTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output, "env");
    private IEnumerable<SshHost> Hosts => fleet.Hosts.Take(2);

    public void Dispose()
    {
        foreach (var host in Hosts)
        {
            host.KillAgent();
            foreach (var orphan in OwnedProcesses.Mentioning(host.Root)) Cutover.Platform.LibC.Kill(orphan, 9);
        }
        _bed.Dispose();
    }

    [Fact]
    public async Task Each_host_runs_with_the_environment_kept_only_in_the_release_s_0600_env_file()
    {
        var token = "fleet-tok-" + Guid.NewGuid().ToString("N")[..12];
        var password = "fleet-pw-" + Guid.NewGuid().ToString("N")[..12];
        var ports = Hosts.ToDictionary(h => h, _ => Cutover.Platform.LoopbackPort.Free());
        var config = _bed.NodeConfig(Hosts, ports, instances: 1, monitor: "200ms", body: $"""
            env_file: .env
            env:
              NODE_ENV: production
              DATABASE_URL: postgres://app:${"{"}DB_PASSWORD{"}"}@db/shop
            hooks:
              after_switch: ["echo host hook sees $API_TOKEN"]
            """);
        File.WriteAllText(_bed.Dir.Combine(".env"), $"API_TOKEN={token}\n");
        var source = _bed.Dir.Combine("src");
        Directory.CreateDirectory(source);
        File.WriteAllText(Path.Combine(source, "server.js"), AppEnvironmentAgentTests.App);
        File.WriteAllText(Path.Combine(source, "VERSION"), "v1");

        var environment = new Dictionary<string, string>(_bed.CliEnvironment()) { ["DB_PASSWORD"] = password };
        var deploy = await _bed.CliWith(environment, "deploy", source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);
        Assert.Contains("host hook sees ***", deploy.All, StringComparison.Ordinal);

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        var web = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        var hits = new List<string>();
        foreach (var host in Hosts)
        {
            var seen = JsonSerializer.Deserialize<AppEnvironmentAgentTests.Seen>(await http.GetStringAsync($"http://127.0.0.1:{ports[host]}/"), web)!;
            Assert.Equal(new AppEnvironmentAgentTests.Seen("v1", token, $"postgres://app:{password}@db/shop", "production", null), seen);

            var envDir = Path.Combine(host.Root, _bed.App, ".cutover", "env");
            var envFile = Assert.Single(Directory.GetFiles(envDir, "*.env"));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(envFile));
            Assert.Contains(token, File.ReadAllText(envFile), StringComparison.Ordinal);

            // Every file of the host (its home, with the per-app config and the agent's logs, and the root) but that one.
            foreach (var file in Directory.EnumerateFiles(host.Dir, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }))
            {
                if (file == envFile) continue;
                byte[] bytes;
                try { bytes = File.ReadAllBytes(file); } catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
                var text = Encoding.UTF8.GetString(bytes);
                hits.AddRange(new[] { token, password }.Where(s => text.Contains(s, StringComparison.Ordinal)).Select(s => $"{file}: {s}"));
            }
        }
        Assert.DoesNotContain(token, deploy.All, StringComparison.Ordinal);
        Assert.DoesNotContain(password, deploy.All, StringComparison.Ordinal);
        Assert.Empty(hits);

        // A second release with another token, then a fleet rollback: every host runs the first one's environment again.
        File.WriteAllText(_bed.Dir.Combine(".env"), "API_TOKEN=fleet-second-token\n");
        File.WriteAllText(Path.Combine(source, "VERSION"), "v2");
        var second = await _bed.CliWith(environment, "deploy", source, "-c", config);
        Assert.True(second.ExitCode == 0, second.All);
        foreach (var host in Hosts)
            Assert.Equal("fleet-second-token", JsonSerializer.Deserialize<AppEnvironmentAgentTests.Seen>(await http.GetStringAsync($"http://127.0.0.1:{ports[host]}/"), web)!.Token);
        var rollback = await _bed.Cli("rollback", "-c", config);
        Assert.True(rollback.ExitCode == 0, rollback.All);
        foreach (var host in Hosts)
            Assert.Equal(new AppEnvironmentAgentTests.Seen("v1", token, $"postgres://app:{password}@db/shop", "production", null),
                JsonSerializer.Deserialize<AppEnvironmentAgentTests.Seen>(await http.GetStringAsync($"http://127.0.0.1:{ports[host]}/"), web));
        Assert.DoesNotContain(token, rollback.All, StringComparison.Ordinal);
    }
}
