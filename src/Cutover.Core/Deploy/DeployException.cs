namespace Cutover;

/// <summary>A deploy or rollback that cannot go on; the message is written for the person at the terminal.</summary>
public class DeployException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>
/// The user asked for something that cannot be done as asked (a release that does not exist, a root that is a file
/// or belongs to something else): bad input, exit 2, and nothing was changed because of it.
/// </summary>
public class InputException(string message) : DeployException(message);
