using Docker.DotNet;
using Docker.DotNet.Unix;

namespace Cutover.Containers;

/// <summary>A Docker Engine API client for a host string as users write it: unix:///path/docker.sock or tcp://host:port.</summary>
public static class DockerClientFactory
{
    public static DockerClient Create(string host)
    {
        var builder = new DockerClientBuilder().WithEndpoint(new Uri(host));
        return host.StartsWith("unix://", StringComparison.Ordinal)
            ? builder.WithTransportOptions(new UnixSocketTransportOptions()).Build()
            : builder.Build();
    }
}
