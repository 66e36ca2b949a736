using System.Diagnostics;

namespace Cutover.Staging;

/// <summary>What a deploy stages: the artifact, and the image it is when a release is an image (null for files).</summary>
public sealed record ReleaseSource(IArtifactSource Artifact, string? Image);

/// <summary>Turns what the user named on the command line into an artifact, and finds its revision.</summary>
public static class ArtifactSource
{
    public static IArtifactSource Open(string path, string root)
    {
        var full = Path.TrimEndingDirectorySeparator(Path.GetFullPath(path));
        if (Directory.Exists(full))
        {
            // Staging a tree into a root inside it would copy each new release into itself.
            if (root == full || root.StartsWith(full + "/", StringComparison.Ordinal))
                throw new ArtifactException($"the source {path} contains the deploy root {root}; deploy a build directory or move the root out of it");
            return new DirectoryArtifact(full);
        }
        if (TarballArtifact.Looks(full)) return new TarballArtifact(full);
        if (File.Exists(full))
            throw new ArtifactException($"{path} is neither a directory nor a .tar.gz/.tgz/.tar archive");
        throw new ArtifactException($"the source {path} does not exist");
    }

    /// <summary>
    /// An artifact without a single file is almost always a build that produced nothing, which would go live as an
    /// empty release: refused (unless --allow-empty) before anything is written. Reading stops at the first file.
    /// </summary>
    /// <param name="live">Whose live release would be empty, for the message ("the live release", "every host's live release").</param>
    public static void RefuseEmpty(IArtifactSource source, string live, CancellationToken cancellationToken)
    {
        if (!source.Entries(cancellationToken).Any(e => e.Kind != EntryKind.Directory))
            throw new ArtifactException($"{source.Description} holds no files, so {live} would be empty; check the build, or pass --allow-empty if an empty release is what you want");
    }

    /// <summary>The git commit of a source directory, when it is inside a work tree; null otherwise.</summary>
    public static async Task<string?> GitRevisionAsync(string path, CancellationToken cancellationToken)
    {
        var dir = Path.GetFullPath(path);
        if (!Directory.Exists(dir)) return null;
        try
        {
            var start = new ProcessStartInfo("git") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var arg in new[] { "-C", dir, "rev-parse", "--verify", "-q", "HEAD" }) start.ArgumentList.Add(arg);
            using var process = Process.Start(start)!;
            var output = await process.StandardOutput.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            return process.ExitCode == 0 && output.Trim().Length >= 7 ? output.Trim() : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null; // git is not installed
        }
    }
}
