using System.Buffers.Binary;
using System.IO.Compression;

namespace Cutover.Tests.Support;

/// <summary>
/// A PNG decoded to RGB, enough to check what headless Chromium rendered: 8-bit truecolour with or without alpha
/// (what Chromium writes), every scanline filter, no interlacing. Anything else is refused rather than misread.
/// </summary>
public sealed class PngImage
{
    public int Width { get; }
    public int Height { get; }
    private readonly byte[] _rgb;

    private PngImage(int width, int height, byte[] rgb) => (Width, Height, _rgb) = (width, height, rgb);

    public (byte R, byte G, byte B) Pixel(int x, int y)
    {
        var i = (y * Width + x) * 3;
        return (_rgb[i], _rgb[i + 1], _rgb[i + 2]);
    }

    /// <summary>Pixels in the rectangle within <paramref name="tolerance"/> per channel of <paramref name="hex"/> (#rrggbb).</summary>
    public int Count(string hex, int tolerance = 6, (int X, int Y, int W, int H)? area = null)
    {
        var (r, g, b) = (Convert.ToInt32(hex[1..3], 16), Convert.ToInt32(hex[3..5], 16), Convert.ToInt32(hex[5..7], 16));
        return Pixels(area).Count(p => Math.Abs(p.R - r) <= tolerance && Math.Abs(p.G - g) <= tolerance && Math.Abs(p.B - b) <= tolerance);
    }

    public int DistinctColours((int X, int Y, int W, int H)? area = null) => Pixels(area).Distinct().Count();

    private IEnumerable<(byte R, byte G, byte B)> Pixels((int X, int Y, int W, int H)? area)
    {
        var (x0, y0, w, h) = area ?? (0, 0, Width, Height);
        for (var y = y0; y < Math.Min(Height, y0 + h); y++)
            for (var x = x0; x < Math.Min(Width, x0 + w); x++)
                yield return Pixel(x, y);
    }

    public static PngImage Read(string path)
    {
        var bytes = File.ReadAllBytes(path);
        ReadOnlySpan<byte> signature = [137, 80, 78, 71, 13, 10, 26, 10];
        if (!bytes.AsSpan(0, 8).SequenceEqual(signature)) throw new InvalidDataException($"{path} is not a PNG");
        int width = 0, height = 0, channels = 0;
        using var compressed = new MemoryStream();
        for (var at = 8; at < bytes.Length;)
        {
            var length = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(at));
            var type = System.Text.Encoding.ASCII.GetString(bytes, at + 4, 4);
            var data = bytes.AsSpan(at + 8, length);
            if (type == "IHDR")
            {
                width = BinaryPrimitives.ReadInt32BigEndian(data);
                height = BinaryPrimitives.ReadInt32BigEndian(data[4..]);
                var (depth, colourType, interlace) = (data[8], data[9], data[12]);
                channels = colourType switch { 2 => 3, 6 => 4, _ => 0 };
                if (depth != 8 || channels == 0 || interlace != 0)
                    throw new InvalidDataException($"{path}: bit depth {depth}, colour type {colourType}, interlace {interlace} is not what this reader decodes");
            }
            else if (type == "IDAT") compressed.Write(data);
            else if (type == "IEND") break;
            at += 12 + length;
        }
        compressed.Position = 0;
        using var inflated = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionMode.Decompress)) zlib.CopyTo(inflated);
        var raw = inflated.ToArray();
        var stride = width * channels;
        var previous = new byte[stride];
        var line = new byte[stride];
        var rgb = new byte[width * height * 3];
        for (var y = 0; y < height; y++)
        {
            var offset = y * (stride + 1);
            var filter = raw[offset];
            for (var i = 0; i < stride; i++)
            {
                int a = i >= channels ? line[i - channels] : 0, b = previous[i], c = i >= channels ? previous[i - channels] : 0;
                var predicted = filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new InvalidDataException($"{path}: unknown filter {filter} on line {y}"),
                };
                line[i] = (byte)(raw[offset + 1 + i] + predicted);
            }
            for (var x = 0; x < width; x++) line.AsSpan(x * channels, 3).CopyTo(rgb.AsSpan((y * width + x) * 3));
            (previous, line) = (line, previous);
        }
        return new PngImage(width, height, rgb);
    }

    private static int Paeth(int a, int b, int c)
    {
        var p = a + b - c;
        var (pa, pb, pc) = (Math.Abs(p - a), Math.Abs(p - b), Math.Abs(p - c));
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
