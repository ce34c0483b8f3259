using System;
using System.Runtime.InteropServices;

namespace Kepmlog
{
    /// <summary>Logs from a Keeper Privilege Manager job task to the agent's KeeperLogger topic
    /// over TLS MQTT v5, through libkepmlog's C ABI. Logging never blocks and does no I/O on the
    /// caller's thread: records go to a bounded queue drained by the library's worker thread.
    /// Safe to use from many threads at once. Dispose it (a <c>using</c> block) before the task
    /// exits: <see cref="Dispose"/> delivers what is queued within
    /// <see cref="LoggerOptions.DefaultCloseTimeout"/>.</summary>
    /// <example><code>
    /// using (var log = new Logger(new LoggerOptions { Source = "SecretScanner" }))
    /// {
    ///     log.Info("SecretsScan", "Scan complete: 0 issues detected.");
    /// }
    /// </code></example>
    public sealed class Logger : IDisposable
    {
        private readonly LoggerHandle handle;
        private readonly string clientId;

        /// <summary>Creates a logger and starts its worker; returns at once (discovery and the
        /// TLS connection happen in the background, records logged meanwhile are queued).</summary>
        /// <param name="options">Null: every default (the job's environment and arguments).</param>
        /// <exception cref="MissingJobIdException">No <c>KEEPER_JOB_ID</c>: declare <c>mqttTopics</c> in the job.</exception>
        /// <exception cref="InvalidInputException">An option the library cannot use (the text names it).</exception>
        /// <exception cref="DllNotFoundException">The native library is missing for this platform.</exception>
        public Logger(LoggerOptions options = null)
        {
            Native.EnsureLoaded();
            options = options ?? new LoggerOptions();
            IntPtr o;
            Check(Native.kepmlog_options_new(out o));
            try
            {
                Configure(o, options);
                LoggerHandle h;
                Status s = Native.kepmlog_logger_new(o, out h);
                if (s != Status.Ok)
                {
                    throw Error(s, 0);
                }
                handle = h;
            }
            finally
            {
                Native.kepmlog_options_free(ref o);
            }
            IntPtr id;
            clientId = Native.kepmlog_logger_client_id(handle, out id) == Status.Ok ? Native.FromUtf8(id) : string.Empty;
        }

        /// <summary>A logger for a job task started by the agent (job id from
        /// <c>KEEPER_JOB_ID</c>, API base from <c>--keeper-api-base</c>), with this
        /// <c>MetaData.Source</c>.</summary>
        public static Logger FromJob(string source)
        {
            return new Logger(new LoggerOptions { Source = source });
        }

        /// <summary>The linked libkepmlog's version, e.g. "0.1.0".</summary>
        public static string LibraryVersion
        {
            get
            {
                Native.EnsureLoaded();
                return Native.FromUtf8(Native.kepmlog_version());
            }
        }

        /// <summary>The MQTT client id, <c>{jobId}_{token}_{pid}</c> ("" with the stderr fallback).</summary>
        public string ClientId { get { return clientId; } }

        private static void Configure(IntPtr o, LoggerOptions opts)
        {
            SetString(o, opts.Source, "Source", Native.kepmlog_options_set_source);
            SetString(o, opts.DefaultCategory, "DefaultCategory", Native.kepmlog_options_set_default_category);
            SetString(o, opts.JobId, "JobId", Native.kepmlog_options_set_job_id);
            SetString(o, opts.Token ?? EntryToken(), "Token", Native.kepmlog_options_set_token);
            SetString(o, opts.ApiBase, "ApiBase", Native.kepmlog_options_set_api_base);
            SetString(o, opts.CaBundle, "CaBundle", Native.kepmlog_options_set_ca_bundle);
            SetString(o, opts.EventTopic, "EventTopic", Native.kepmlog_options_set_event_topic);
            SetString(o, opts.SpoolDir, "SpoolDir", Native.kepmlog_options_set_spool_dir);
            SetString(o, opts.Fallback, "Fallback", Native.kepmlog_options_set_fallback_name);
            if (opts.BrokerHost != null || opts.BrokerPort != 0)
            {
                Check(Native.kepmlog_options_set_broker(o, Native.Utf8(opts.BrokerHost, "BrokerHost"), opts.BrokerPort));
            }
            if (opts.QueueCapacity < 0)
            {
                throw new InvalidArgumentException(string.Format("QueueCapacity {0}: pass 0 (default) or more", opts.QueueCapacity));
            }
            if (opts.QueueCapacity > 0)
            {
                Check(Native.kepmlog_options_set_queue_capacity(o, new UIntPtr((uint)opts.QueueCapacity)));
            }
            if (opts.BlockWhenFull > TimeSpan.Zero)
            {
                Check(Native.kepmlog_options_set_overflow(o, 1, Millis(opts.BlockWhenFull, "BlockWhenFull")));
            }
            if (opts.SettingsTimeout.HasValue)
            {
                Check(Native.kepmlog_options_set_settings_timeout(o, Millis(opts.SettingsTimeout.Value, "SettingsTimeout")));
            }
            if (opts.DropTimeout.HasValue)
            {
                Check(Native.kepmlog_options_set_drop_timeout(o, Millis(opts.DropTimeout.Value, "DropTimeout")));
            }
            if (opts.Quiet)
            {
                Check(Native.kepmlog_options_set_stderr_diagnostics(o, 0));
            }
            if (!opts.UndeliveredToStderr)
            {
                Check(Native.kepmlog_options_set_undelivered_to_stderr(o, 0));
            }
            SetArgs(o, opts.Args ?? Environment.GetCommandLineArgs());
        }

        // The library's default token is the process's executable, which under Mono (and
        // `dotnet app.dll`) is the runtime ("mono-sgen"), not the tool: use the entry
        // assembly's name when it is one a client id can carry as it is.
        private static string EntryToken()
        {
            var entry = System.Reflection.Assembly.GetEntryAssembly();
            string name = entry == null ? null : System.IO.Path.GetFileNameWithoutExtension(entry.Location);
            if (string.IsNullOrEmpty(name))
            {
                return null;
            }
            foreach (char c in name)
            {
                if (!(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
                {
                    return null;
                }
            }
            return name;
        }

        private delegate Status StringSetter(IntPtr options, byte[] value);

        private static void SetString(IntPtr o, string value, string what, StringSetter set)
        {
            if (value != null)
            {
                Check(set(o, Native.Utf8(value, what)));
            }
        }

        private static void SetArgs(IntPtr o, string[] args)
        {
            if (args.Length == 0)
            {
                return;
            }
            var argv = new IntPtr[args.Length];
            try
            {
                for (int i = 0; i < args.Length; i++)
                {
                    // Read only for --keeper-api-base and the executable name: a NUL cannot be
                    // in a real argument, so cut there rather than fail (as Go does).
                    string a = args[i] ?? string.Empty;
                    int nul = a.IndexOf('\0');
                    byte[] bytes = Native.Utf8(nul >= 0 ? a.Substring(0, nul) : a, "argument " + i);
                    argv[i] = Marshal.AllocHGlobal(bytes.Length);
                    Marshal.Copy(bytes, 0, argv[i], bytes.Length);
                }
                Check(Native.kepmlog_options_set_args(o, args.Length, argv));
            }
            finally
            {
                foreach (IntPtr p in argv)
                {
                    if (p != IntPtr.Zero)
                    {
                        Marshal.FreeHGlobal(p);
                    }
                }
            }
        }

        private static ulong Millis(TimeSpan t, string what)
        {
            if (t < TimeSpan.Zero)
            {
                throw new InvalidArgumentException(what + " is negative: pass zero or more");
            }
            return (ulong)t.Ticks / TimeSpan.TicksPerMillisecond;
        }

        private static KepmlogException Error(Status s, ulong undelivered)
        {
            // Read before anything else calls into the library: the text is per thread and
            // replaced by the next call.
            string text = Native.FromUtf8(Native.kepmlog_last_error());
            return KepmlogException.FromStatus(s, text, undelivered);
        }

        private static void Check(Status s)
        {
            if (s != Status.Ok)
            {
                throw Error(s, 0);
            }
        }

        private static ShutDownException Closed()
        {
            return new ShutDownException("logger is disposed: create a new logger to log again");
        }

        // Every call that passes the handle goes through here: after Dispose the marshaller
        // would throw ObjectDisposedException, which callers should not have to know about.
        private T WithHandle<T>(Func<LoggerHandle, T> f)
        {
            if (handle.IsClosed)
            {
                throw Closed();
            }
            try
            {
                return f(handle);
            }
            catch (ObjectDisposedException)
            {
                throw Closed();
            }
        }

        /// <summary>Logs one record. <paramref name="category"/> null or "" uses the default
        /// category; <paramref name="message"/> must not be empty. Newlines become spaces;
        /// over-long fields are cut with a visible marker.</summary>
        /// <returns>True when queued; false when the queue was full (the record was dropped and
        /// counted in <see cref="Stats.Dropped"/>; not fatal).</returns>
        /// <exception cref="EmptyMessageException">The message is empty or white space.</exception>
        /// <exception cref="InvalidLevelException">Not one of the six levels.</exception>
        /// <exception cref="ShutDownException">The logger was shut down or disposed.</exception>
        public bool Log(Level level, string category, string message, string correlationId = null, string context = null)
        {
            byte[] c = Native.Utf8(category, "category");
            byte[] m = Native.Utf8(message ?? string.Empty, "message");
            byte[] id = Native.Utf8(correlationId, "correlation id");
            byte[] ctx = Native.Utf8(context, "context");
            // No lambda here, unlike the other calls: this is the hot path, and a closure is an
            // allocation per record.
            if (handle.IsClosed)
            {
                throw Closed();
            }
            Status s;
            try
            {
                s = Native.kepmlog_log_with(handle, (int)level, c, m, id, ctx);
            }
            catch (ObjectDisposedException)
            {
                throw Closed();
            }
            return Accepted(s);
        }

        private static bool Accepted(Status s)
        {
            if (s == Status.QueueFull)
            {
                return false;
            }
            if (s != Status.Ok)
            {
                throw Error(s, 0);
            }
            return true;
        }

        /// <summary>Logs at <see cref="Level.Verbose"/> (the least severe). See <see cref="Log"/>.</summary>
        public bool Verbose(string category, string message, string correlationId = null, string context = null)
        {
            return Log(Level.Verbose, category, message, correlationId, context);
        }

        /// <summary>Logs at <see cref="Level.Debug"/>. See <see cref="Log"/>.</summary>
        public bool Debug(string category, string message, string correlationId = null, string context = null)
        {
            return Log(Level.Debug, category, message, correlationId, context);
        }

        /// <summary>Logs at <see cref="Level.Info"/>. See <see cref="Log"/>.</summary>
        public bool Info(string category, string message, string correlationId = null, string context = null)
        {
            return Log(Level.Info, category, message, correlationId, context);
        }

        /// <summary>Logs at <see cref="Level.Warning"/>. See <see cref="Log"/>.</summary>
        public bool Warning(string category, string message, string correlationId = null, string context = null)
        {
            return Log(Level.Warning, category, message, correlationId, context);
        }

        /// <summary>Logs at <see cref="Level.Error"/>. See <see cref="Log"/>.</summary>
        public bool Error(string category, string message, string correlationId = null, string context = null)
        {
            return Log(Level.Error, category, message, correlationId, context);
        }

        /// <summary>Logs at <see cref="Level.Critical"/>. See <see cref="Log"/>.</summary>
        public bool Critical(string category, string message, string correlationId = null, string context = null)
        {
            return Log(Level.Critical, category, message, correlationId, context);
        }

        /// <summary>Publishes a job progress event, one JSON object given as text, to the event
        /// topic (QoS 1). The topic must be in the job's <c>allowedPublications</c>.</summary>
        /// <returns>True when queued; false when the queue was full.</returns>
        /// <exception cref="InvalidEventException">Not one JSON object (or too large).</exception>
        public bool Event(string json)
        {
            byte[] j = Native.Utf8(json ?? string.Empty, "event JSON");
            return Accepted(WithHandle(h => Native.kepmlog_event(h, j)));
        }

        /// <summary>Waits until every record accepted before the call is acknowledged by the
        /// broker, or the timeout; what is not delivered by then stays queued.</summary>
        /// <exception cref="DeniedException">The broker refused publishes since the last flush.</exception>
        /// <exception cref="UndeliverableException">Records were given up since the last flush.</exception>
        /// <exception cref="DeliveryTimeoutException">Records still pending at the deadline (<see cref="DeliveryException.Undelivered"/>).</exception>
        public void Flush(TimeSpan timeout)
        {
            ulong ms = Millis(timeout, "timeout");
            ulong left = 0;
            Status s = WithHandle(h => Native.kepmlog_flush(h, ms, out left));
            if (s != Status.Ok)
            {
                throw Error(s, left);
            }
        }

        /// <summary>Flushes until the timeout, disconnects and stops the worker. Idempotent;
        /// logging afterwards throws <see cref="ShutDownException"/>. Records not delivered by
        /// the deadline are given up (counted as failed) and written to stderr unless
        /// <see cref="LoggerOptions.UndeliveredToStderr"/> is off. Throws as <see cref="Flush"/>.</summary>
        public void Shutdown(TimeSpan timeout)
        {
            ulong ms = Millis(timeout, "timeout");
            ulong left = 0;
            Status s = WithHandle(h => Native.kepmlog_shutdown(h, ms, out left));
            if (s != Status.Ok)
            {
                throw Error(s, left);
            }
        }

        /// <summary>The logger's counters (also after <see cref="Shutdown"/>).</summary>
        /// <exception cref="ShutDownException">After <see cref="Dispose"/>.</exception>
        public Stats GetStats()
        {
            return WithHandle(h =>
            {
                NativeStats st;
                ulong printed, recovered, spoolDropped;
                byte toStderr;
                Check(Native.kepmlog_stats(h, out st));
                Check(Native.kepmlog_logger_spool_counts(h, out recovered, out spoolDropped));
                Check(Native.kepmlog_logger_printed(h, out printed, out toStderr));
                return new Stats(st, printed, recovered, spoolDropped);
            });
        }

        /// <summary>Whether records go to stderr instead of KeeperLogger (the stderr fallback
        /// without a job id).</summary>
        public bool WritesToStderr
        {
            get
            {
                return WithHandle(h =>
                {
                    ulong printed;
                    byte on;
                    Check(Native.kepmlog_logger_printed(h, out printed, out on));
                    return on != 0;
                });
            }
        }

        /// <summary>The bounded shutdown: delivers what is queued within
        /// <see cref="LoggerOptions.DefaultCloseTimeout"/>, then frees the native logger.
        /// Idempotent and never throws: what could not be delivered is counted in the stats,
        /// written to stderr, and reported by the library's diagnostics; call
        /// <see cref="Shutdown"/> first to get the outcome as an exception.</summary>
        public void Dispose()
        {
            if (handle.IsClosed)
            {
                return;
            }
            try
            {
                Shutdown(LoggerOptions.DefaultCloseTimeout);
            }
            catch (KepmlogException)
            {
                // Reported already (stats, stderr); Dispose runs in finally blocks, where a
                // throw would hide the exception that is unwinding.
            }
            handle.Dispose();
        }
    }
}
