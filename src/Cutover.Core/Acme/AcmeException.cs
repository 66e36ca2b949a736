namespace Cutover.Acme;

/// <summary>
/// Obtaining a certificate failed: the ACME server refused, or it could not be reached or understood. A
/// DeployException, so the CLI reports it as an environment failure (exit 1).
/// </summary>
public class AcmeException(string message, Exception? inner = null) : DeployException(message, inner);

/// <summary>
/// An RFC 7807 problem document from the ACME server (RFC 8555 6.7). The message names the type and the detail,
/// so `cutover status` and the agent log say what the CA objected to.
/// </summary>
public sealed class AcmeProblemException : AcmeException
{
    public const string BadNonce = "urn:ietf:params:acme:error:badNonce";
    public const string AccountDoesNotExist = "urn:ietf:params:acme:error:accountDoesNotExist";

    public AcmeProblemException(string what, string type, string? detail, int status)
        : base($"{what}: the ACME server answered {status} {type}{(string.IsNullOrEmpty(detail) ? "" : ": " + detail)}")
    {
        Type = type;
        Detail = detail;
        Status = status;
    }

    public string Type { get; }
    public string? Detail { get; }
    public int Status { get; }
}
