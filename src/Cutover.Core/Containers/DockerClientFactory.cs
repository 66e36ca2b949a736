using Docker.DotNet;
using Docker.DotNet.Unix;

namespace Cutover.Containers;

/// <summary>Makes a Docker Engine API client from a host string as written in cutover.yml.</summary>
public static class DockerClientFactory
{
    /// <param name="host">unix:///path/to/docker.sock or tcp://host:port.</param>
    public static DockerClient Create(string host)
    {
        var uri = new Uri(host);
        var builder = new DockerClientBuilder().WithEndpoint(uri);
        // No API version is pinned: unversioned paths work against every daemon from 20.10 (API 1.41) on.
        if (uri.Scheme == "unix") builder = builder.WithTransportOptions(new UnixSocketTransportOptions());
        return builder.Build();
    }
}
