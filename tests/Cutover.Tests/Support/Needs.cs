namespace Cutover.Tests.Support;

/// <summary>
/// The trait that says what a test needs beyond the build, so a developer can run the fast tier alone:
/// <c>dotnet test --filter "Needs!=docker&amp;Needs!=postgres&amp;Needs!=sshd&amp;Needs!=nginx&amp;Needs!=haproxy&amp;Needs!=pebble&amp;Needs!=chromium&amp;Needs!=slow"</c>.
/// CI (test.sh) runs everything; nothing is skipped because of these.
/// </summary>
public static class Needs
{
    /// <summary>The trait name: <c>[Trait(Needs.Trait, Needs.Docker)]</c>.</summary>
    public const string Trait = "Needs";

    /// <summary>A private dockerd (DockerEngine): runtime: docker and Swarm.</summary>
    public const string Docker = "docker";

    /// <summary>A private PostgreSQL (PostgresServer): migrations.</summary>
    public const string Postgres = "postgres";

    /// <summary>Three sshd hosts on 127.0.0.2-4 and the published single-file build (SshFleet, PublishedCutover).</summary>
    public const string Sshd = "sshd";

    /// <summary>A real nginx (and php-fpm for NginxPhpServer).</summary>
    public const string Nginx = "nginx";

    /// <summary>Debian's haproxy (HaproxyServer): router: haproxy.</summary>
    public const string Haproxy = "haproxy";

    /// <summary>A real ACME server: Debian's pebble and pebble-challtestsrv (PebbleServer).</summary>
    public const string Pebble = "pebble";

    /// <summary>Debian's chromium, headless (HeadlessChromium): the deploy report rendered to a PNG.</summary>
    public const string Chromium = "chromium";

    /// <summary>
    /// Over ~10 s on the 2-core machine, or a class of them: apps under load through the agent's proxy and the CLI
    /// (Rolling/*: Node, ASP.NET, blue-green, agent, recovery, cancellation, after_switch), the CLI process
    /// matrices (CliTests, BadInputMatrixTests) and CrashSafetyTests' SIGKILL sweep.
    /// </summary>
    public const string Slow = "slow";
}
