// kepmlog from C# through the C ABI: log N records after one warm-up record, then Flush; the
// same workload and JSON result line as bench/c/bench.c, so the two run side by side against
// one broker (bindings/dotnet/bench/run.sh). Settings from KEPMLOG_BENCH_{HOST,PORT,CA,N,MESSAGE}.
using System;
using System.Diagnostics;
using System.Globalization;
using Kepmlog;

internal static class Bench
{
    private const string DefaultMessage =
        "Scanned /var/lib/app/config/settings.json: 0 issues, 12 keys checked, policy strict, " +
        "duration 3 ms, status OK ....";

    private static long Pct(long[] sorted, double p)
    {
        int i = (int)(sorted.Length * p);
        return sorted.Length == 0 ? 0 : sorted[Math.Min(i, sorted.Length - 1)];
    }

    private static int Main()
    {
        string host = Environment.GetEnvironmentVariable("KEPMLOG_BENCH_HOST") ?? "127.0.0.1";
        string port = Environment.GetEnvironmentVariable("KEPMLOG_BENCH_PORT");
        string ca = Environment.GetEnvironmentVariable("KEPMLOG_BENCH_CA");
        string message = Environment.GetEnvironmentVariable("KEPMLOG_BENCH_MESSAGE");
        if (string.IsNullOrEmpty(message)) message = DefaultMessage;
        int n;
        if (!int.TryParse(Environment.GetEnvironmentVariable("KEPMLOG_BENCH_N"), out n) || n <= 0) n = 100000;
        if (port == null || ca == null)
        {
            Console.WriteLine("{\"peer\":\"kepmlog-dotnet\",\"error\":\"KEPMLOG_BENCH_PORT and KEPMLOG_BENCH_CA must be set\"}");
            return 1;
        }
        using (var log = new Logger(new LoggerOptions
        {
            Source = "BenchTool", JobId = "bench-job", Token = "dotnet", BrokerHost = host,
            BrokerPort = ushort.Parse(port), CaBundle = ca, Args = new string[0],
            QueueCapacity = Math.Max(n, 65536), BlockWhenFull = TimeSpan.FromSeconds(60),
        }))
        {
            log.Info("Bench", "warm-up");
            log.Flush(TimeSpan.FromSeconds(30));
            // The JIT compiles the call path before the timed loop, as the C program's is
            // compiled ahead of time.
            for (int i = 0; i < 1000; i++) log.Info("Bench", message);
            log.Flush(TimeSpan.FromSeconds(30));
            Stats before = log.GetStats();
            var lat = new long[n];
            long refused = 0;
            TimeSpan cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var total = Stopwatch.StartNew();
            var one = new Stopwatch();
            for (int i = 0; i < n; i++)
            {
                one.Restart();
                bool ok = log.Info("Bench", message);
                lat[i] = one.ElapsedTicks;
                if (!ok) refused++;
            }
            string flushError = "";
            try
            {
                log.Flush(TimeSpan.FromSeconds(300));
            }
            catch (KepmlogException e)
            {
                flushError = ",\"error\":\"flush: " + e.StatusName + "\"";
            }
            double secs = total.Elapsed.TotalSeconds;
            long cpuUs = (long)((Process.GetCurrentProcess().TotalProcessorTime - cpu0).Ticks / 10);
            Stats after = log.GetStats();
            Array.Sort(lat);
            double nsPerTick = 1e9 / Stopwatch.Frequency;
            Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
                "{{\"peer\":\"kepmlog-dotnet\",\"n\":{0},\"acked\":{1},\"secs\":{2:0.000000},\"cpu_us\":{3},\"maxrss_kb\":{4}," +
                "\"p50_ns\":{5},\"p99_ns\":{6},\"p999_ns\":{7},\"refused\":{8},\"dropped\":{9}{10}}}",
                n, after.Delivered - before.Delivered, secs, cpuUs, Process.GetCurrentProcess().PeakWorkingSet64 / 1024,
                (long)(Pct(lat, 0.5) * nsPerTick), (long)(Pct(lat, 0.99) * nsPerTick), (long)(Pct(lat, 0.999) * nsPerTick),
                refused, after.Dropped, flushError));
            return flushError == "" ? 0 : 1;
        }
    }
}
