using System.Text.Json;
using Cutover.Tests.Notify;
using Cutover.Tests.Support;
using Xunit.Abstractions;

namespace Cutover.Tests.Fleet;

/// <summary>
/// `cutover history` and `notify:` across two real sshd hosts: each fleet deploy is one line (the hosts' entries share
/// its fleet id), per-host lines with --hosts, and the webhook hears each fleet deploy and rollback once, from the CLI,
/// never from the hosts (which run on this machine and could reach the receiver).
/// </summary>
[Collection(FleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetHistoryTests(SshFleet fleet, PublishedCutover published, ITestOutputHelper output) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output, "hist");
    private IReadOnlyList<SshHost> Hosts => fleet.Hosts.Take(2).ToList();
    private string Source => _bed.Source;

    public void Dispose()
    {
        _bed.KillLeftovers(fleet.Hosts);
        _bed.Dispose();
    }

    private void WriteSource(string version, bool fail = false)
    {
        if (Directory.Exists(Source)) Directory.Delete(Source, recursive: true);
        Directory.CreateDirectory(Source);
        File.WriteAllText(Path.Combine(Source, "VERSION"), version);
        if (fail) File.WriteAllText(Path.Combine(Source, "FAIL_BEFORE"), "");
    }

    [Fact]
    public async Task History_shows_one_line_per_fleet_deploy_with_host_detail_and_the_webhook_hears_each_once()
    {
        using var receiver = new WebhookReceiver();
        _bed.Config("symlink", Hosts, $"""
            hooks:
              before_switch: ["test ! -f FAIL_BEFORE"]
            notify:
              webhook: {receiver.Url("FLEETSECRET")}
              timeout: 3s
            """);

        WriteSource("1");
        Assert.Equal(0, (await _bed.Cli("deploy", Source, "--revision", "r1")).ExitCode);
        WriteSource("2", fail: true);
        Assert.Equal(1, (await _bed.Cli("deploy", Source, "--revision", "r2")).ExitCode);
        WriteSource("3");
        Assert.Equal(0, (await _bed.Cli("deploy", Source, "--revision", "r3")).ExitCode);
        Assert.Equal(0, (await _bed.Cli("rollback")).ExitCode);

        // Read-only, so all at once.
        var reads = await Task.WhenAll(_bed.Cli("history", "--json"), _bed.Cli("history"), _bed.Cli("history", "--hosts", "--limit", "2"), _bed.Cli("history", "--hosts", Hosts[0].Name, "--json", "-n", "1"));
        var (json, text, detail, one) = (reads[0], reads[1], reads[2], reads[3]);
        Assert.Equal(0, json.ExitCode);
        var lines = JsonDocument.Parse(json.Stdout).RootElement.EnumerateArray().ToList();
        Assert.Equal(["rollback", "deploy", "deploy", "deploy"], lines.Select(l => l.GetProperty("action").GetString()));
        Assert.Equal(["success", "success", "failed", "success"], lines.Select(l => l.GetProperty("outcome").GetString()));
        Assert.Equal(["r1", "r3", "r2", "r1"], lines.Select(l => l.GetProperty("revision").GetString()));
        Assert.Contains("before_switch", lines[2].GetProperty("reason").GetString());
        foreach (var line in lines)
        {
            var hosts = line.GetProperty("hosts").EnumerateArray().ToList();
            Assert.Equal(Hosts.Select(h => h.Name).Order(), hosts.Select(h => h.GetProperty("host").GetString()).Order());
            // One fleet id per fleet deploy, the same on every host, and the deploying user's name.
            var id = line.GetProperty("fleet_deploy").GetString();
            Assert.False(string.IsNullOrEmpty(id));
            Assert.All(hosts, h => Assert.Equal(id, h.GetProperty("entry").GetProperty("fleet_deploy").GetString()));
            Assert.Equal(Environment.UserName, line.GetProperty("user").GetString());
            Assert.True(line.GetProperty("seconds").GetDouble() >= 0);
        }
        Assert.Equal(4, lines.Select(l => l.GetProperty("fleet_deploy").GetString()).Distinct().Count());

        Assert.Equal(0, text.ExitCode);
        var rows = text.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, rows.Length); // the header and one line per fleet deploy
        Assert.StartsWith("2/2", rows[1].Trim());
        Assert.StartsWith("0/2", rows[3].Trim());
        var detailRows = detail.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(1 + 2 * 3, detailRows.Length); // the header, then each of two fleet lines with its two hosts
        foreach (var host in Hosts) Assert.Equal(2, detailRows.Count(r => r.Contains(host.Name)));
        Assert.Equal([Hosts[0].Name], JsonDocument.Parse(one.Stdout).RootElement[0].GetProperty("hosts").EnumerateArray().Select(h => h.GetProperty("host").GetString()));

        // Once per fleet deploy or rollback, from the CLI: the hosts' own rollbacks and sessions stay silent.
        Assert.Equal(["deployed", "failed", "deployed", "rolled_back"], receiver.Received.Select(r => r.Body.GetProperty("event").GetString()));
        Assert.Contains("to 2 hosts", receiver.Of("deployed")[0].GetProperty("text").GetString());
    }
}
