using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Cutover.Platform;

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
            var value = JsonSerializer.Deserialize(text, Contract<T>(options ?? Strict));
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

    /// <summary>
    /// <paramref name="value"/> as JSON through <paramref name="options"/>' contract for <typeparamref name="T"/>: the
    /// compile-time one when a context holds it (the only kind the Native AOT build has), else reflection (JIT builds).
    /// </summary>
    public static string Write<T>(T value, JsonSerializerOptions options) => JsonSerializer.Serialize(value, Contract<T>(options));

    public static byte[] WriteUtf8<T>(T value, JsonSerializerOptions options) => JsonSerializer.SerializeToUtf8Bytes(value, Contract<T>(options));

    public static T? Read<T>(string text, JsonSerializerOptions options) => JsonSerializer.Deserialize(text, Contract<T>(options));

    public static JsonTypeInfo<T> Contract<T>(JsonSerializerOptions options) => (JsonTypeInfo<T>)options.GetTypeInfo(typeof(T));

    /// <summary>
    /// The dialect with <paramref name="contracts"/> (another assembly's compile-time context) consulted first, for
    /// the CLI's --json records.
    /// </summary>
    public static JsonSerializerOptions With(IJsonTypeInfoResolver contracts, bool indented)
    {
        var options = Create(indented, contracts);
        options.MakeReadOnly();
        return options;
    }

    private static JsonSerializerOptions Create(bool indented, IJsonTypeInfoResolver? contracts = null)
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            DictionaryKeyPolicy = JsonNamingPolicy.SnakeCaseLower,
            WriteIndented = indented,
            // Each enum the compile-time contracts hold, as snake_case strings, by a converter made for it: an options-wide
            // JsonStringEnumConverter builds its converters with MakeGenericType, which the Native AOT build cannot.
            Converters =
            {
                new JsonStringEnumConverter<Releases.ReleaseStatus>(JsonNamingPolicy.SnakeCaseLower),
                new JsonStringEnumConverter<Supervisor.InstanceState>(JsonNamingPolicy.SnakeCaseLower),
                new JsonStringEnumConverter<Progress.BatchStep>(JsonNamingPolicy.SnakeCaseLower),
                new JsonStringEnumConverter<Deploy.ActivationOutcome>(JsonNamingPolicy.SnakeCaseLower),
            },
        };
        IJsonTypeInfoResolver[] compiled = contracts is null
            ? [Releases.JsonContracts.Default, Releases.AgentJsonContracts.Default]
            : [contracts, Releases.JsonContracts.Default, Releases.AgentJsonContracts.Default];
        if (JitOnly.IsAvailable)
        {
            // JIT builds: every other type by reflection, its enums by name.
            options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower));
            options.TypeInfoResolver = JsonTypeInfoResolver.Combine([.. compiled, new DefaultJsonTypeInfoResolver()]);
        }
        else
        {
            options.TypeInfoResolver = JsonTypeInfoResolver.Combine(compiled);
        }
        return options;
    }
}
