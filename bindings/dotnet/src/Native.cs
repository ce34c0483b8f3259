// P/Invoke declarations of libkepmlog's C ABI (include/kepmlog.h) and the hand-written UTF-8
// marshalling: netstandard2.0 promises no UnmanagedType.LPUTF8Str on Mono or .NET Framework,
// whose default string marshalling is ANSI (the system code page on Windows).
using System;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;

namespace Kepmlog
{
    internal enum Status
    {
        Ok = 0,
        NullArgument = 1,
        InvalidUtf8 = 2,
        InvalidArgument = 3,
        MissingJobId = 4,
        InvalidJobId = 5,
        EmptyMessage = 6,
        InvalidLevel = 7,
        InvalidEvent = 8,
        QueueFull = 9,
        ShutDown = 10,
        Forked = 11,
        Timeout = 12,
        Denied = 13,
        Panic = 14,
        Internal = 15,
        Undeliverable = 16,
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct NativeStats
    {
        public ulong Accepted;
        public ulong Delivered;
        public ulong Dropped;
        public ulong Denied;
        public ulong Failed;
        public ulong Pending;
        public ulong Reconnects;
        // C's bool is one byte; a .NET bool field would marshal as a 4-byte Win32 BOOL.
        public byte Connected;
    }

    /// <summary>Owns one <c>kepmlog_logger*</c>. The P/Invoke marshaller adds a reference for the
    /// length of every call that takes it, so a concurrent Dispose frees the native logger only
    /// after calls in flight have returned; the critical finalizer frees it when user code
    /// crashed or forgot Dispose (the native free delivers within the drop timeout).</summary>
    internal sealed class LoggerHandle : SafeHandle
    {
        private LoggerHandle() : base(IntPtr.Zero, true) { }

        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }

        protected override bool ReleaseHandle()
        {
            IntPtr p = handle;
            return Native.kepmlog_logger_free(ref p) == Status.Ok;
        }
    }

    internal static class Native
    {
        // Windows: kepmlog.dll; Linux: libkepmlog.so; macOS: libkepmlog.dylib. The runtime adds
        // the prefix and suffix; Mono maps the name through Kepmlog.dll.config.
        internal const string Lib = "kepmlog";

        private static readonly UTF8Encoding StrictUtf8 = new UTF8Encoding(false, true);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr kepmlog_version();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr kepmlog_last_error();

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern IntPtr kepmlog_status_name(int status);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_new(out IntPtr options);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_free(ref IntPtr options);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_source(IntPtr options, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_default_category(IntPtr options, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_job_id(IntPtr options, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_token(IntPtr options, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_api_base(IntPtr options, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_ca_bundle(IntPtr options, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_event_topic(IntPtr options, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_spool_dir(IntPtr options, byte[] value);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_fallback_name(IntPtr options, byte[] name);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_broker(IntPtr options, byte[] host, ushort port);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_queue_capacity(IntPtr options, UIntPtr capacity);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_overflow(IntPtr options, int policy, ulong blockTimeoutMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_settings_timeout(IntPtr options, ulong timeoutMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_drop_timeout(IntPtr options, ulong timeoutMs);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_args(IntPtr options, int argc, IntPtr[] argv);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_stderr_diagnostics(IntPtr options, byte enabled);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_options_set_undelivered_to_stderr(IntPtr options, byte enabled);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_logger_new(IntPtr options, out LoggerHandle logger);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_logger_free(ref IntPtr logger);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_log_with(LoggerHandle logger, int level, byte[] category,
            byte[] message, byte[] correlationId, byte[] context);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_event(LoggerHandle logger, byte[] json);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_flush(LoggerHandle logger, ulong timeoutMs, out ulong undelivered);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_shutdown(LoggerHandle logger, ulong timeoutMs, out ulong undelivered);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_stats(LoggerHandle logger, out NativeStats stats);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_logger_client_id(LoggerHandle logger, out IntPtr clientId);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_logger_printed(LoggerHandle logger, out ulong printed, out byte writesToStderr);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl)]
        internal static extern Status kepmlog_logger_spool_counts(LoggerHandle logger, out ulong recovered, out ulong spoolDropped);

        /// <summary>A NUL-terminated UTF-8 copy of <paramref name="s"/>; null stays null (the C
        /// ABI's "unset"). A NUL inside or a lone surrogate is refused with the fix named: C
        /// strings end at NUL, and a silent U+FFFD would change what the operator reads.</summary>
        internal static byte[] Utf8(string s, string what)
        {
            if (s == null)
            {
                return null;
            }
            if (s.IndexOf('\0') >= 0)
            {
                throw new InvalidArgumentException(what + " contains a NUL character: remove it (C strings end at NUL)");
            }
            int n;
            try
            {
                n = StrictUtf8.GetByteCount(s);
            }
            catch (EncoderFallbackException)
            {
                throw new InvalidArgumentException(what + " is not valid UTF-16 (a lone surrogate): pass well-formed text");
            }
            var bytes = new byte[n + 1];
            StrictUtf8.GetBytes(s, 0, s.Length, bytes, 0);
            return bytes;
        }

        /// <summary>Decodes a NUL-terminated UTF-8 string owned by the library.</summary>
        internal static string FromUtf8(IntPtr p)
        {
            if (p == IntPtr.Zero)
            {
                return string.Empty;
            }
            int len = 0;
            while (Marshal.ReadByte(p, len) != 0)
            {
                len++;
            }
            var bytes = new byte[len];
            Marshal.Copy(p, bytes, 0, len);
            return Encoding.UTF8.GetString(bytes);
        }

        private static volatile bool loaded;

        /// <summary>Loads the native library on first use, turning the runtime's terse
        /// DllNotFoundException into one that names the platform and where the file belongs.</summary>
        internal static void EnsureLoaded()
        {
            if (loaded)
            {
                return;
            }
            try
            {
                kepmlog_version();
            }
            catch (DllNotFoundException e)
            {
                throw new DllNotFoundException(MissingLibraryMessage(), e);
            }
            loaded = true;
        }

        internal static string MissingLibraryMessage()
        {
            string rid = Platform.RuntimeIdentifier;
            string file = Platform.NativeFileName;
            string dir = Path.GetDirectoryName(typeof(Native).Assembly.Location) ?? ".";
            // Mono follows Kepmlog.dll.config's dllmap to runtimes/{rid}/native/ only, so a
            // library copied beside the assembly is not found while that file is there.
            if (File.Exists(Path.Combine(dir, file)) && File.Exists(Path.Combine(dir, "Kepmlog.dll.config")))
            {
                return string.Format(
                    "kepmlog: {0} is beside Kepmlog.dll in {1}, but Kepmlog.dll.config maps Mono to " +
                    "runtimes/{2}/native/{0}: move it there (NuGet's layout) or delete Kepmlog.dll.config.",
                    file, dir, rid);
            }
            return string.Format(
                "kepmlog: the native library {0} for {1} {2} (runtime {3}) was not found. Install the " +
                "Kepmlog package's runtimes/{3}/native/{0} with your application: next to Kepmlog.dll " +
                "({4}), in runtimes/{3}/native/ below it, or on the system's library path. Prebuilt " +
                "runtimes: win-x64, linux-x64, linux-arm64, osx-x64, osx-arm64.",
                file, Platform.OsName, Platform.Architecture, rid, dir);
        }
    }

    /// <summary>The platform names NuGet's runtimes/{rid}/native layout uses.</summary>
    internal static class Platform
    {
        internal static string OsName
        {
            get
            {
                if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows)) return "Windows";
                if (RuntimeInformation.IsOSPlatform(OSPlatform.OSX)) return "macOS";
                if (RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return "Linux";
                return RuntimeInformation.OSDescription;
            }
        }

        internal static string Architecture
        {
            get { return RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant(); }
        }

        internal static string RuntimeIdentifier
        {
            get
            {
                string os = RuntimeInformation.IsOSPlatform(OSPlatform.Windows) ? "win"
                    : RuntimeInformation.IsOSPlatform(OSPlatform.OSX) ? "osx"
                    : RuntimeInformation.IsOSPlatform(OSPlatform.Linux) ? "linux" : "unknown";
                return os + "-" + Architecture;
            }
        }

        internal static string NativeFileName
        {
            get
            {
                if (RuntimeInformation.IsOSPlatform(OSPlatform.Windows)) return "kepmlog.dll";
                if (RuntimeInformation.IsOSPlatform(OSPlatform.OSX)) return "libkepmlog.dylib";
                return "libkepmlog.so";
            }
        }
    }
}
