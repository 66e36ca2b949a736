using System.Text;
using Cutover.Config;
using Cutover.Platform;

namespace Cutover.Releases;

/// <summary>
/// `.cutover/env/&lt;release&gt;.env`: the environment `cutover deploy` resolved for a release (env_file and ${VAR}
/// included), written with mode 0600 by the deploying user, in a 0700 directory, outside releases/&lt;id&gt;/. The agent
/// starts that release's instances with it (after a restart too), and a rollback brings it back with the release, so
/// the secrets are needed only where the deploy runs. The values travel to processes in their environment block,
/// never on a command line.
/// </summary>
public static class ReleaseEnvironmentFile
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyDirectory = OwnerOnly | UnixFileMode.UserExecute;

    /// <summary>Writes the release's variables; nothing when the config has none (a release without a file has no app environment).</summary>
    public static void Write(RootLayout layout, ReleaseId id, AppEnvironment environment)
    {
        if (environment.Deferred || environment.Variables.Count == 0) return;
        var path = layout.EnvFile(id);
        var dir = Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir)) Directory.CreateDirectory(dir, OwnerOnlyDirectory);
        var secrets = environment.Secrets.ToHashSet(StringComparer.Ordinal);
        AtomicFile.WriteAllText(path, Format(environment.Variables, environment.Variables.Where(v => secrets.Contains(v.Value)).Select(v => v.Key)), OwnerOnly);
    }

    private const string SecretNamesPrefix = "# secret:";

    /// <summary>
    /// The release's environment, or null when it has no env file (no env configured). Its secrets are the values of
    /// the variables the file's `# secret:` line names (what came from env_file or ${VAR}); a file without that line
    /// counts every value as secret, the safe side.
    /// </summary>
    public static AppEnvironment? Read(RootLayout layout, ReleaseId id)
    {
        var path = layout.EnvFile(id);
        if (!File.Exists(path)) return null;
        var text = File.ReadAllText(path);
        var errors = new List<ConfigError>();
        var entries = DotEnv.Parse(text, path, errors);
        // Written by Format, so a mistake means the file was edited or damaged; its text is not shown (it holds secrets).
        if (errors.Count > 0) throw new DeployException($"{path} cannot be read back (line {errors[0].Line}); it is written by cutover deploy, deploy again to rewrite it");
        var variables = entries.ToDictionary(e => e.Name, e => e.Value, StringComparer.Ordinal);
        var marker = text.Split('\n').FirstOrDefault(l => l.StartsWith(SecretNamesPrefix, StringComparison.Ordinal));
        var secretNames = marker?[SecretNamesPrefix.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        return new AppEnvironment
        {
            Variables = variables,
            Secrets = variables.Where(v => secretNames is null || secretNames.Contains(v.Key)).Select(v => v.Value).ToArray(),
        };
    }

    /// <summary>
    /// The config as the agent runs <paramref name="releaseId"/>: its env file's variables under run.env / docker.env.
    /// The agent reads configs without resolving env (see <see cref="AppEnvironment.Deferred"/>), so this is the one
    /// place its instances get the app's environment.
    /// </summary>
    public static CutoverConfig Apply(CutoverConfig config, string? releaseId)
    {
        if (releaseId is null || !ReleaseId.TryParse(releaseId, out var id)) return config;
        return Read(new RootLayout(config.Root), id) is { } environment ? environment.ApplyTo(config) : config;
    }

    /// <summary>
    /// What must never be shown for this root: the config's secrets and every value of every release's env file (a
    /// rollback runs with an older release's, and a command that did not resolve env, such as rollback or status,
    /// knows the secrets only from them). A file this user cannot read is skipped: its values cannot reach this process's output.
    /// </summary>
    public static Redactor RedactorFor(string root, AppEnvironment environment)
    {
        var secrets = new List<string>(environment.Secrets);
        var dir = new RootLayout(root).EnvDir;
        try
        {
            if (Directory.Exists(dir))
                foreach (var file in Directory.EnumerateFiles(dir, "*.env"))
                    if (ReleaseId.TryParse(Path.GetFileNameWithoutExtension(file), out var id))
                        try { secrets.AddRange(Read(new RootLayout(root), id)?.Secrets ?? []); }
                        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DeployException) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return new Redactor(secrets);
    }

    /// <summary>
    /// Double-quoted dotenv lines that <see cref="DotEnv"/> reads back exactly (newlines and quotes escaped), and a
    /// comment naming the secret ones (null: every one), so literal values such as NODE_ENV=production stay readable
    /// in output instead of becoming *** wherever the word appears.
    /// </summary>
    internal static string Format(IReadOnlyDictionary<string, string> variables, IEnumerable<string>? secretNames = null)
    {
        var text = new StringBuilder("# Written by cutover deploy; secrets: mode 0600, never copy it into a release.\n");
        if (secretNames is not null) text.Append(SecretNamesPrefix).Append(' ').AppendJoin(' ', secretNames.Order(StringComparer.Ordinal)).Append('\n');
        foreach (var (name, value) in variables.OrderBy(v => v.Key, StringComparer.Ordinal))
            text.Append(name).Append("=\"").Append(value.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n").Replace("\r", "\\r")).Append("\"\n");
        return text.ToString();
    }
}
