using Microsoft.AspNetCore.Builder;

namespace Cutover.Platform;

/// <summary>
/// ASP.NET Core's slim builder, without its file watch. By default a host reads appsettings.json from its content root,
/// the process's working directory, with reload on change, which watches that directory recursively: an agent started by
/// a `cutover deploy` run in /tmp or a home directory put an inotify watch on every directory below it (15,900 from /tmp,
/// measured) and did an lstat per file event anywhere there, for nothing: the agent reads no appsettings.json. Here the
/// content root is cutover's own directory and nothing is watched.
/// </summary>
public static class UnwatchedWebHost
{
    public static WebApplicationBuilder CreateSlimBuilder() => WebApplication.CreateSlimBuilder(new WebApplicationOptions
    {
        ContentRootPath = AppContext.BaseDirectory,
        // Read by the host before it adds appsettings.json (HostingHostBuilderExtensions: hostBuilder:reloadConfigOnChange).
        Args = ["--hostBuilder:reloadConfigOnChange=false"],
    });
}
