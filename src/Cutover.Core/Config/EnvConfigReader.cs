namespace Cutover.Config;

/// <summary>
/// Reads top-level `env:` and `env_file:` into the <see cref="AppEnvironment"/> (kept apart from the rest of the
/// reader, which other sections grow in). env_file is read where `cutover deploy` runs, relative to the config file
/// that names it; every variable in it is part of the environment, `env:` entries override them, and `${NAME}` in
/// an `env:` value looks in the deploying process's environment first, then in env_file (compose's order).
/// </summary>
public static class EnvConfigReader
{
    /// <param name="resolve">False in the agent: the keys are checked, nothing is read or looked up (see <see cref="AppEnvironment.Deferred"/>).</param>
    /// <param name="lookup">The deploying process's environment.</param>
    public static AppEnvironment Read(YamlSection top, bool resolve, Func<string, string?> lookup)
    {
        var envSection = top.Section("env");
        var envFile = top.String("env_file");
        if (envSection is null && envFile is null) return AppEnvironment.Empty;
        var literal = new Dictionary<string, (string Text, YamlDotNet.RepresentationModel.YamlNode Node)>(StringComparer.Ordinal);
        if (envSection is not null)
        {
            foreach (var name in envSection.Keys.ToList())
            {
                if (!EnvInterpolation.IsName(name)) envSection.KeyError(name, $"'{name}' is not an environment variable name (letters, digits and _, not starting with a digit)");
                var text = envSection.String(name, "");
                if (envSection.NodeOf(name) is { } node) literal[name] = (text ?? "", node);
            }
        }
        if (!resolve) return new AppEnvironment { Deferred = true };

        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        var secrets = new List<string>();
        var fromFile = new Dictionary<string, string>(StringComparer.Ordinal);
        string? path = null;
        if (envFile is not null)
        {
            path = Path.GetFullPath(envFile, Path.GetDirectoryName(top.FileOf("env_file"))!);
            if (!File.Exists(path))
                top.Error("env_file", $"'{envFile}' does not exist ({path}); env_file is read where cutover deploy runs");
            else
            {
                string text;
                try { text = File.ReadAllText(path); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    top.Error("env_file", $"'{path}' cannot be read: {e.Message}");
                    text = "";
                }
                foreach (var entry in DotEnv.Parse(text, path, top.Errors))
                {
                    fromFile[entry.Name] = entry.Value;
                    variables[entry.Name] = entry.Value;
                    secrets.Add(entry.Value);
                }
            }
        }
        foreach (var (name, (text, node)) in literal)
        {
            var used = new List<string>();
            var value = EnvInterpolation.Resolve(text, v => lookup(v) ?? fromFile.GetValueOrDefault(v), used, out var error);
            if (value is null)
            {
                envSection!.Error(node, name, error!);
                continue;
            }
            variables[name] = value;
            if (used.Count > 0)
            {
                secrets.AddRange(used);
                secrets.Add(value);
            }
        }
        return new AppEnvironment { Variables = variables, Secrets = secrets.Distinct(StringComparer.Ordinal).ToArray(), EnvFile = path };
    }
}
