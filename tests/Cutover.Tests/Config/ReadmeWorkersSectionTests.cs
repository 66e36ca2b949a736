using System.Text.RegularExpressions;
using Cutover.Config;
using Cutover.Tests.Support;

namespace Cutover.Tests.Config;

/// <summary>
/// Every YAML block of the README's "Workers, roles and secrets" section loads with the real config reader, env_file
/// and ${VAR} resolved (a fragment is completed with the smallest rolling app): an example that does not parse is a defect.
/// </summary>
public sealed class ReadmeWorkersSectionTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static List<string> SectionBlocks()
    {
        var readme = File.ReadAllText(Path.Combine(Repo.Root, "README.md"));
        var start = readme.IndexOf("\n## Workers, roles and secrets\n", StringComparison.Ordinal);
        Assert.True(start >= 0, "the README has no \"Workers, roles and secrets\" section");
        var end = readme.IndexOf("\n## ", start + 1, StringComparison.Ordinal);
        var section = readme[start..(end < 0 ? readme.Length : end)];
        return Regex.Matches(section, "```ya?ml\n(.*?)```", RegexOptions.Singleline).Select(m => m.Groups[1].Value).ToList();
    }

    [Fact]
    public void Every_yaml_block_of_the_workers_section_loads()
    {
        var blocks = SectionBlocks();
        // The Laravel and Node examples, processes:, the environment and the hosts blocks at least.
        Assert.True(blocks.Count >= 5, $"{blocks.Count} blocks");
        File.WriteAllText(_dir.Combine(".env.production"), "APP_KEY=base64:abcdefgh\n");
        foreach (var block in blocks)
        {
            var yaml = block.StartsWith("app:", StringComparison.Ordinal) ? block
                : "app: readme\nstrategy: rolling\nroot: /srv/readme\nrun:\n  command: node server.js\nproxy:\n  listen: 127.0.0.1:3000\n" + block;
            try
            {
                var config = ConfigLoader.Parse(yaml, _dir.Combine("cutover.yml"), name => $"value-of-{name}");
                Assert.NotNull(config.Settings);
            }
            catch (ConfigException e)
            {
                Assert.Fail($"{string.Join("; ", e.Errors.Select(x => x.ToString()))}\nin:\n{block}");
            }
        }
    }

    [Fact]
    public void The_laravel_and_node_examples_have_their_process_types_and_the_singleton()
    {
        var complete = SectionBlocks().Where(b => b.StartsWith("app:", StringComparison.Ordinal)).ToList();
        File.WriteAllText(_dir.Combine(".env.production"), "APP_KEY=base64:abcdefgh\n");
        var laravel = ConfigLoader.Parse(complete[0], _dir.Combine("cutover.yml"), name => $"value-of-{name}");
        var settings = laravel.SettingsOf<InstanceSettings>();
        Assert.Equal(["queue", "scheduler"], settings.Processes.Select(p => p.Name));
        Assert.True(settings.Processes.Single(p => p.Name == "scheduler").Singleton);
        Assert.Equal("jobs1", laravel.Fleet!.SingletonHost(settings.Processes[1].Roles)!.Name);
        Assert.Equal("base64:abcdefgh", laravel.Environment.Variables["APP_KEY"]);
        var node = ConfigLoader.Parse(complete[1], _dir.Combine("cutover.yml"), name => $"value-of-{name}").SettingsOf<InstanceSettings>();
        Assert.Equal(["worker", "scheduler"], node.Processes.Select(p => p.Name));
    }
}
