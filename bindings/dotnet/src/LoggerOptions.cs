using System;

namespace Kepmlog
{
    /// <summary>Options of a <see cref="Logger"/>. Every property left null (or at its default)
    /// is not passed to the native library, which then applies its own default: the job's
    /// environment and arguments as the agent sets them, and the core's values named below.</summary>
    public sealed class LoggerOptions
    {
        /// <summary>How long <see cref="Logger.Dispose"/> waits for delivery: the one default of
        /// every binding (<c>KEPMLOG_DEFAULT_CLOSE_TIMEOUT_MS</c> in kepmlog.h, a literal there
        /// too; scripts/test-dotnet.sh checks the two agree).</summary>
        public static readonly TimeSpan DefaultCloseTimeout = TimeSpan.FromMilliseconds(5000);

        /// <summary><c>MetaData.Source</c>: the tool's name in the operator's logs. Default: the
        /// executable's name.</summary>
        public string Source { get; set; }

        /// <summary><c>MetaData.Category</c> when a call passes null or "". Default "General".</summary>
        public string DefaultCategory { get; set; }

        /// <summary>The job id. Default: <c>KEEPER_JOB_ID</c>, set by the agent when the job
        /// declares <c>mqttTopics</c>.</summary>
        public string JobId { get; set; }

        /// <summary>Short binary name in the MQTT client id. Default: the entry assembly's name (the
        /// tool, not "mono" or "dotnet") when it has only letters, digits and hyphens, else the
        /// executable's name.</summary>
        public string Token { get; set; }

        /// <summary>Agent API base. Default: <c>--keeper-api-base</c> in <see cref="Args"/>, else
        /// <c>https://127.0.0.1:6889</c>.</summary>
        public string ApiBase { get; set; }

        /// <summary>PEM file of CAs to trust. Without it, certificate checks are skipped, and
        /// only for loopback addresses.</summary>
        public string CaBundle { get; set; }

        /// <summary>Broker host; with <see cref="BrokerPort"/> it skips Plugin Settings discovery.</summary>
        public string BrokerHost { get; set; }

        /// <summary>Broker port (0: unset).</summary>
        public ushort BrokerPort { get; set; }

        /// <summary>Records the queue holds (0: the core's 65536).</summary>
        public int QueueCapacity { get; set; }

        /// <summary>Above zero, a full queue makes logging wait this long for room before it
        /// drops; zero (the default) drops at once and never blocks.</summary>
        public TimeSpan BlockWhenFull { get; set; }

        /// <summary>Topic of <see cref="Logger.Event"/>. Default <c>Jobs/{jobId}/events</c>; it
        /// must be in <c>allowedPublications</c>.</summary>
        public string EventTopic { get; set; }

        /// <summary>Timeout of the Plugin Settings request (null: the core's 3 s).</summary>
        public TimeSpan? SettingsTimeout { get; set; }

        /// <summary>How long freeing a logger that was never shut down (the finalizer's path)
        /// may wait to deliver (null: the core's 5 s).</summary>
        public TimeSpan? DropTimeout { get; set; }

        /// <summary>The arguments to read <c>--keeper-api-base</c> and the executable name from.
        /// Default: <see cref="Environment.GetCommandLineArgs"/> (under Mono the program's .exe,
        /// not <c>mono</c>, is the executable).</summary>
        public string[] Args { get; set; }

        /// <summary>Turns off the library's own diagnostics on stderr (<c>kepmlog: ...</c>).</summary>
        public bool Quiet { get; set; }

        /// <summary>What creating a logger does without a job id: <c>"error"</c> (fail with
        /// <see cref="MissingJobIdException"/>) or <c>"stderr"</c> (write every record as a text
        /// line on stderr). Null: the <c>KEPMLOG_FALLBACK</c> environment variable, else error.</summary>
        public string Fallback { get; set; }

        /// <summary>Whether shutdown writes the records still undelivered at its deadline to
        /// stderr as text lines (default true).</summary>
        public bool UndeliveredToStderr { get; set; } = true;

        /// <summary>The crash-safe spool directory (null: <c>KEPMLOG_SPOOL_DIR</c>, else none).
        /// It must be this user's and writable by nobody else (created 0700 when missing).</summary>
        public string SpoolDir { get; set; }
    }
}
