using Cutover.Config;
using Cutover.Deploy;
using Cutover.Fleet;

namespace Cutover.Tests.Fleet;

/// <summary>hosts[].roles and primary in cutover.yml, and the --hosts/--roles/--primary selection every fleet command takes.</summary>
public class FleetRolesConfigTests
{
    private const string File = "/srv/app/cutover.yml";

    private static FleetConfig Fleet(string hosts) => ConfigLoader.Parse("app: shop\nroot: /srv/shop\n" + hosts, File).Fleet!;

    private const string IssueExample = """
        hosts:
          - { host: web1, roles: [web] }
          - { host: jobs1, roles: [worker], primary: true }
          - web2
          - { host: both1, roles: [web, worker] }
        """;

    [Fact]
    public void Hosts_carry_roles_a_host_without_them_is_web_and_the_primary_is_the_one_marked()
    {
        var fleet = Fleet(IssueExample);
        Assert.Equal([["web"], ["worker"], ["web"], ["web", "worker"]], fleet.Hosts.Select(h => h.Roles.ToArray()));
        Assert.Equal("jobs1", fleet.Primary.Name);
        Assert.Equal(["web", "worker"], fleet.Roles);
    }

    [Fact]
    public void A_process_type_for_a_role_no_host_carries_is_refused_at_its_roles_key()
    {
        var yaml = "app: shop\nroot: /srv/shop\nstrategy: rolling\nrun: { command: node server.js }\nproxy: { listen: 127.0.0.1:3000 }\n"
                   + "processes:\n  worker:\n    command: node worker.js\n    roles: [jobs]\n"
                   + "hosts:\n  - { host: web1, roles: [web] }\n  - { host: jobs1, roles: [worker] }\n";
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse(yaml, File));
        var error = Assert.Single(e.Errors).ToString();
        Assert.StartsWith("/srv/app/cutover.yml:9:", error);
        Assert.Contains("processes.worker.roles: no host has the role 'jobs'; the roles of this fleet are web, worker", error);
    }

    [Fact]
    public void Without_primary_the_first_host_is_primary()
    {
        Assert.Equal("web1", Fleet("hosts: [web1, web2]\n").Primary.Name);
    }

    [Theory]
    [InlineData("hosts:\n  - { host: a, primary: true }\n  - { host: b, primary: true }\n",
        "/srv/app/cutover.yml:5:5: hosts: more than one host is primary: a (line 4), b (line 5); migrations run on one host, mark only it `primary: true`")]
    [InlineData("hosts:\n  - { host: a, roles: [] }\n", "/srv/app/cutover.yml:4:23: hosts[0].roles: a host needs at least one role; remove 'roles' for the default [web]")]
    [InlineData("hosts:\n  - { host: a, roles: [web, 'bad role'] }\n", "/srv/app/cutover.yml:4:29: hosts[0].roles: 'bad role' is not a role name")]
    [InlineData("hosts:\n  - { host: a, roles: [web, web] }\n", "/srv/app/cutover.yml:4:29: hosts[0].roles: 'web' is listed twice")]
    [InlineData("hosts:\n  - { host: a, roles: web }\n", "/srv/app/cutover.yml:4:23: hosts[0].roles: must be a list, for example [a, b]")]
    [InlineData("hosts:\n  - { host: a, primary: yes-please }\n", "/srv/app/cutover.yml:4:25: hosts[0].primary:")]
    public void Role_and_primary_mistakes_name_file_line_and_key(string yaml, string expected)
    {
        var e = Assert.Throws<ConfigException>(() => ConfigLoader.Parse("app: shop\nroot: /srv/shop\n" + yaml, File));
        Assert.Contains(e.Errors, x => x.ToString().StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void Selection_by_hosts_roles_and_primary_and_all_of_them_together()
    {
        var fleet = Fleet(IssueExample);
        Assert.False(HostSelection.All(fleet).Narrowed);
        Assert.Equal(["web1", "both1"], Names(HostSelection.Parse(fleet, "web1,both1", null)));
        Assert.Equal(["web1", "web2", "both1"], Names(HostSelection.Parse(fleet, null, "web")));
        Assert.Equal(["jobs1", "both1"], Names(HostSelection.Parse(fleet, null, "worker")));
        Assert.Equal(["both1"], Names(HostSelection.Parse(fleet, "web1,both1", "worker")));
        Assert.Equal(["jobs1"], Names(HostSelection.Parse(fleet, null, null, primary: true)));
        Assert.True(HostSelection.Parse(fleet, null, "web").Narrowed);
        Assert.Equal(["jobs1"], HostSelection.Parse(fleet, null, "web").Others(fleet).Select(h => h.Name));
    }

    [Theory]
    [InlineData("web9", null, false, "--hosts: no host 'web9' in the config; its hosts are web1, jobs1, web2, both1")]
    [InlineData(null, "db", false, "--roles: no host has the role 'db'; the roles of this fleet are web, worker")]
    [InlineData("web1", "worker", false, "--hosts web1 and --roles worker together select no host")]
    [InlineData("web1", null, true, "--hosts web1 and --primary together select no host")]
    [InlineData("web1,", null, false, "--hosts: 'web1,' is not a comma-separated list of names")]
    public void A_selection_that_names_nothing_real_is_refused(string? hosts, string? roles, bool primary, string expected)
    {
        var e = Assert.Throws<InputException>(() => HostSelection.Parse(Fleet(IssueExample), hosts, roles, primary));
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
    }

    private static string[] Names(HostSelection selection) => selection.Hosts.Select(h => h.Name).ToArray();
}
