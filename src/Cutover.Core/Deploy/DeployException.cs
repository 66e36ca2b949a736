namespace Cutover;

/// <summary>A deploy or rollback that cannot go on; the message is written for the person at the terminal.</summary>
public class DeployException(string message, Exception? inner = null) : Exception(message, inner);
