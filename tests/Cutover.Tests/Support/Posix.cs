using System.Runtime.InteropServices;

namespace Cutover.Tests.Support;

/// <summary>Inode numbers, which .NET does not expose: lstat(2), st_ino at offset 8 on x86_64 and arm64.</summary>
public static partial class Posix
{
    [LibraryImport("libc", EntryPoint = "lstat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LStat(string path, byte[] buffer);

    public static ulong Inode(string path)
    {
        var buffer = new byte[256];
        if (LStat(path, buffer) != 0) throw new IOException($"lstat {path}: errno {Marshal.GetLastPInvokeError()}");
        return BitConverter.ToUInt64(buffer, 8);
    }
}
