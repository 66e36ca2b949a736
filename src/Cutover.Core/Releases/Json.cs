using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Cutover;

/// <summary>The one JSON dialect Cutover writes: snake_case keys, enums as snake_case strings.</summary>
public static class Json
{
    public static readonly JsonSerializerOptions Options = Create(indented: true);
    public static readonly JsonSerializerOptions Compact = Create(indented: false);

    /// <summary>
    /// For what another process wrote (the agent's answers, a fleet host's messages): a missing field, or a null
    /// where the record has none, is an error rather than a default that reads as something it never said.
    /// </summary>
    public static readonly JsonSerializerOptions Strict = new(Compact)
    {
        RespectNullableAnnotations = true,
        RespectRequiredConstructorParameters = true,
        // Cutover writes the type discriminator first; another writer need not.
        AllowOutOfOrderMetadataProperties = true,
    };

    /// <summary>
    /// <paramref name="text"/> as a <typeparamref name="T"/> read with <see cref="Strict"/>, or null with
    /// <paramref name="problem"/> saying why it is not one.
    /// </summary>
    /// <param name="options">Strict by default; a reader whose contracts add to it (a stream's own result kind) passes its own.</param>
    public static T? TryRead<T>(string text, out string problem, JsonSerializerOptions? options = null) where T : class
    {
        problem = "";
        try
        {
            var value = JsonSerializer.Deserialize<T>(text, options ?? Strict);
            if (value is null) problem = "null";
            return value;
        }
        catch (NotSupportedException) when (typeof(T).GetCustomAttributes(typeof(JsonPolymorphicAttribute), false) is [JsonPolymorphicAttribute polymorphic])
        {
            // No discriminator at all, which leaves only the abstract base to create.
            problem = $"no \"{polymorphic.TypeDiscriminatorPropertyName ?? "$type"}\" field";
            return null;
        }
        catch (Exception e) when (e is JsonException or NotSupportedException)
        {
            problem = Problem(e);
            return null;
        }
    }

    /// <summary>
    /// Why System.Text.Json could not read something, for a person: its message without the byte position and the
    /// advice meant for the developer of the type ("Consider updating its nullability annotation").
    /// </summary>
    public static string Problem(Exception e)
    {
        var message = e.Message;
        foreach (var tail in new[] { " | LineNumber:", " Consider updating" })
            if (message.IndexOf(tail, StringComparison.Ordinal) is var at and >= 0) message = message[..at];
        return message.TrimEnd();
    }

    /// <summary>Text another process sent, for an error message: whole when short, else its start.</summary>
    public static string Quote(string text) => text.Length <= 200 ? text : text[..200] + "...";

    private static JsonSerializerOptions Create(bool indented) => new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = indented,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        TypeInfoResolver = JsonTypeInfoResolver.Combine(Releases.JsonContracts.Default, Releases.AgentJsonContracts.Default, new DefaultJsonTypeInfoResolver()),
    };
}
