// A web project as `dotnet new web` writes it, plus a health route: Kestrel listens where ASPNETCORE_HTTP_PORTS says
// and stops gracefully on SIGTERM/SIGINT, which is all a rolling deploy needs.
var builder = WebApplication.CreateSlimBuilder(args);
var app = builder.Build();
var version = File.Exists("VERSION") ? File.ReadAllText("VERSION").Trim() : "unknown";
app.MapGet("/health", () => "ok\n");
app.MapGet("/", () => $"hello from {version}\n");
app.Run();
