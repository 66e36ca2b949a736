using System.Security.Cryptography;
using System.Text;
using Cutover.Staging;

namespace Cutover.Fleet;

/// <summary>What one host received: files sent, files it already had (hard-linked there), bytes sent.</summary>
public sealed record TransferResult(int FilesSent, long BytesSent, int FilesReused)
{
    public override string ToString() =>
        $"{FilesSent} files sent ({Deploy.DeployPipeline.FormatBytes(BytesSent)}), {FilesReused} already on the host";
}

/// <summary>
/// The artifact, read once on this machine: a manifest (paths, modes, mtimes, symlinks, sha256 per file) and where
/// each file's content is here. Archive content is spooled to a temp directory, because a tarball can be read
/// only once but is sent to many hosts.
/// </summary>
public sealed class LocalArtifact : IDisposable
{
    private readonly Dictionary<string, (string Path, long Size)> _content = new(StringComparer.Ordinal);
    private readonly string _spool;

    private LocalArtifact(string spool, ReleaseManifest manifest)
    {
        _spool = spool;
        Manifest = manifest;
    }

    public ReleaseManifest Manifest { get; private set; }

    public static LocalArtifact Read(IArtifactSource source, CancellationToken cancellationToken)
    {
        var spool = Directory.CreateTempSubdirectory("cutover-fleet-").FullName;
        var artifact = new LocalArtifact(spool, new ReleaseManifest(source.Description, []));
        try
        {
            var entries = new List<ManifestEntry>();
            foreach (var e in source.Entries(cancellationToken))
            {
                var kind = e.Kind switch
                {
                    EntryKind.Directory => "dir",
                    EntryKind.Symlink => "symlink",
                    EntryKind.HardLink => "hardlink",
                    _ => "file",
                };
                string? sha = null;
                if (e.Kind == EntryKind.File) sha = artifact.Hash(e);
                entries.Add(new ManifestEntry { Path = e.Path, Kind = kind, Mode = (int)e.Mode, Mtime = e.ModifiedUtc, Size = e.Size, Sha256 = sha, Target = e.LinkTarget });
            }
            artifact.Manifest = new ReleaseManifest(source.Description, entries);
            return artifact;
        }
        catch
        {
            artifact.Dispose();
            throw;
        }
    }

    private string Hash(ArtifactEntry entry)
    {
        if (entry.SourcePath is not null)
        {
            using var stream = File.OpenRead(entry.SourcePath);
            var sha = Convert.ToHexStringLower(SHA256.HashData(stream));
            _content.TryAdd(sha, (entry.SourcePath, entry.Size));
            return sha;
        }
        var temp = Path.Combine(_spool, Guid.NewGuid().ToString("N"));
        using (var input = entry.OpenContent!())
        using (var output = File.Create(temp))
        using (var hasher = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
        {
            var buffer = new byte[1 << 16];
            int read;
            while ((read = input.Read(buffer)) > 0)
            {
                hasher.AppendData(buffer, 0, read);
                output.Write(buffer, 0, read);
            }
            var sha = Convert.ToHexStringLower(hasher.GetHashAndReset());
            output.Close();
            if (_content.ContainsKey(sha)) File.Delete(temp);
            else
            {
                var final = Path.Combine(_spool, sha);
                File.Move(temp, final, overwrite: true);
                _content[sha] = (final, entry.Size);
            }
            return sha;
        }
    }

    /// <summary>
    /// Sends one host what it lacks: every distinct content whose hash its live release does not have, then the
    /// manifest, into <paramref name="uploadDir"/>; the host's `prepare` builds the release from both.
    /// </summary>
    public async Task<TransferResult> SendAsync(HostConnection host, ISet<string> hostHas, string uploadDir, Action<TransferResult> onProgress, CancellationToken cancellationToken)
    {
        await host.RunCheckedAsync($"mkdir -p {HostConnection.Quote(uploadDir)}", "creating the upload directory", cancellationToken);
        int sent = 0, reused = 0;
        long bytes = 0;
        foreach (var (sha, (path, size)) in _content)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (hostHas.Contains(sha))
            {
                reused++;
                continue;
            }
            await using (var stream = File.OpenRead(path))
                await host.UploadAsync(stream, $"{uploadDir}/{sha}", cancellationToken);
            sent++;
            bytes += size;
            if (sent % 100 == 0) onProgress(new TransferResult(sent, bytes, reused));
        }
        await host.WriteFileAsync($"{uploadDir}/{ReleaseManifest.FileName}", Encoding.UTF8.GetBytes(Manifest.ToJson()), cancellationToken);
        return new TransferResult(sent, bytes, reused);
    }

    public void Dispose() => Releases.ReleaseStore.DeleteTree(_spool);
}
