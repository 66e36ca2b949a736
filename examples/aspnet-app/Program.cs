// An ASP.NET Core (Kestrel) app as Cutover runs it: it listens on $PORT, answers /health, tells a
// NOTIFY_SOCKET it is ready (sd_notify READY=1) when there is one, and shuts down gracefully on SIGINT/SIGTERM.
using System.Net.Sockets;
using System.Text;

var builder = WebApplication.CreateSlimBuilder(args);
builder.WebHost.UseUrls($"http://127.0.0.1:{Environment.GetEnvironmentVariable("PORT") ?? "5000"}");
builder.Logging.ClearProviders();
var app = builder.Build();
var version = File.Exists("VERSION") ? File.ReadAllText("VERSION").Trim() : "unknown";

app.MapGet("/health", () => "ok\n");
app.MapGet("/", () => $"hello from {version} (pid {Environment.ProcessId})\n");
app.Lifetime.ApplicationStarted.Register(() => SdNotify("READY=1\nSTATUS=serving"));
app.Lifetime.ApplicationStopping.Register(() => SdNotify("STOPPING=1"));
app.Run();

static void SdNotify(string message)
{
    var path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
    if (string.IsNullOrEmpty(path)) return;
    using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    socket.Connect(new UnixDomainSocketEndPoint(path));
    socket.Send(Encoding.UTF8.GetBytes(message));
}
