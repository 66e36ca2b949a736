namespace Cutover.Deploy;

/// <summary>
/// Who a deploy or rollback is for, as history records it. On this machine the OS user; on a fleet host the
/// deploying user's name as the CLI sent it (the SSH login is whatever the config's ssh user is), with the id that
/// ties the hosts' entries of one fleet deploy together.
/// </summary>
public sealed record DeployActor(string User, string? FleetDeploy = null)
{
    /// <summary>The user running this process.</summary>
    public static DeployActor Local() => new(Environment.UserName);

    /// <summary>A fresh id for one fleet deploy or rollback, sent to every host it touches.</summary>
    public static string NewFleetDeployId() => Guid.NewGuid().ToString("N")[..12];
}
