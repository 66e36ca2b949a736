using System.Text.Json;
using Cutover.Tests.Fleet;
using Cutover.Tests.Support;

namespace Cutover.Tests.Doctor;

/// <summary>`cutover doctor` with hosts: every host's own doctor over SSH, its host key and its clock against ours.</summary>
[Collection(FleetCollection.Name)]
[Trait(Needs.Trait, Needs.Sshd)]
public sealed class FleetDoctorTests(SshFleet fleet, PublishedCutover published) : IDisposable
{
    private readonly FleetBed _bed = new(fleet, published, output: null, "dr");
    private string RootOf(SshHost host) => _bed.RootOf(host);

    public void Dispose() => _bed.Dispose();

    private string Config(string knownHosts)
    {
        return _bed.Config("symlink", fleet.Hosts.Take(2), knownHosts: knownHosts);
    }

    private static List<(string Host, string Check, string Status, string Message)> Findings(CliResult result) =>
        JsonDocument.Parse(result.Stdout).RootElement.EnumerateArray()
            .Select(f => (f.GetProperty("host").GetString()!, f.GetProperty("check").GetString()!, f.GetProperty("status").GetString()!, f.GetProperty("message").GetString()!))
            .ToList();

    [Fact]
    public async Task Every_host_runs_its_checks_and_reports_host_key_and_clock()
    {
        foreach (var host in fleet.Hosts.Take(2)) if (host.Sshd is null) fleet.Start(host);
        var config = Config(fleet.KnownHosts);
        var source = _bed.Dir.Combine("src");
        AppFactory.WriteHelloPhp(source, "1");
        var deploy = await _bed.Cli("deploy", source, "-c", config);
        Assert.True(deploy.ExitCode == 0, deploy.All);

        var doctor = await _bed.Cli("doctor", "--json", "-c", config);

        Assert.True(doctor.ExitCode == 0, doctor.All);
        var findings = Findings(doctor);
        foreach (var host in fleet.Hosts.Take(2))
        {
            Assert.Contains(findings, f => f.Host == host.Name && f.Check == "ssh" && f.Status == "ok");
            Assert.Contains(findings, f => f.Host == host.Name && f.Check == "clock" && f.Status == "ok" && f.Message.Contains("this machine"));
            // The host's own root check, run there with the build the deploy installed.
            Assert.Contains(findings, f => f.Host == host.Name && f.Check == "root" && f.Status == "ok" && f.Message == $"{RootOf(host)} exists and is writable");
        }
    }

    [Fact]
    public async Task A_host_whose_key_is_not_known_is_an_error()
    {
        foreach (var host in fleet.Hosts.Take(2)) if (host.Sshd is null) fleet.Start(host);
        var empty = _bed.Dir.Combine("known_hosts");
        File.WriteAllText(empty, "");
        var doctor = await _bed.Cli("doctor", "--json", "-c", Config(empty));

        Assert.True(doctor.ExitCode == 1, doctor.All);
        var findings = Findings(doctor);
        foreach (var host in fleet.Hosts.Take(2))
            Assert.Contains(findings, f => f.Host == host.Name && f.Check == "ssh" && f.Status == "error");
        Assert.Empty(File.ReadAllText(empty)); // doctor records no key without --accept-new-host-keys
    }
}
