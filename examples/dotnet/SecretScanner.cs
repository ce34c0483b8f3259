// secret-scanner-dotnet: a KEPM job tool in C#. Scans a directory tree for files that look
// like they hold plain-text secrets and reports counts and paths (never the secrets) to the
// agent's KeeperLogger through kepmlog.
//
// Started by the agent as `secret-scanner-dotnet --keeper-api-base=https://127.0.0.1:6889 [DIR]`
// with KEEPER_JOB_ID in its environment (examples/jobs/secret-scanner-dotnet.json). Under Mono,
// Jobs/bin/secret-scanner-dotnet/secret-scanner-dotnet is a launcher that execs
// `mono secret-scanner-dotnet.exe "$@"`, so the process the agent started is the one that connects.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using Kepmlog;

internal static class SecretScanner
{
    private static readonly byte[][] Markers =
    {
        Encoding.ASCII.GetBytes("-----BEGIN RSA PRIVATE KEY-----"),
        Encoding.ASCII.GetBytes("-----BEGIN OPENSSH PRIVATE KEY-----"),
        Encoding.ASCII.GetBytes("-----BEGIN PRIVATE KEY-----"),
        Encoding.ASCII.GetBytes("AKIA"),
        Encoding.ASCII.GetBytes("password="),
        Encoding.ASCII.GetBytes("secret_key"),
    };

    private const long MaxFileBytes = 1 << 20;
    private const int MaxFiles = 20000;

    // The first argument that is not a --flag (or the value of --keeper-api-base), else ".".
    private static string ScanRoot(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--keeper-api-base") i++;
            else if (!args[i].StartsWith("--", StringComparison.Ordinal)) return args[i];
        }
        return ".";
    }

    private static bool Contains(byte[] data, byte[] marker)
    {
        for (int i = 0; i + marker.Length <= data.Length; i++)
        {
            int k = 0;
            while (k < marker.Length && data[i + k] == marker[k]) k++;
            if (k == marker.Length) return true;
        }
        return false;
    }

    // Files under root in walk order, at most MaxFiles; unreadable directories are reported.
    private static List<string> Collect(Logger log, string root)
    {
        var files = new List<string>();
        var dirs = new Stack<string>();
        dirs.Push(root);
        while (dirs.Count > 0 && files.Count < MaxFiles)
        {
            string dir = dirs.Pop();
            try
            {
                foreach (string f in Directory.GetFiles(dir).OrderBy(f => f, StringComparer.Ordinal))
                {
                    if (files.Count >= MaxFiles) break;
                    files.Add(f);
                }
                foreach (string sub in Directory.GetDirectories(dir).OrderByDescending(s => s, StringComparer.Ordinal))
                {
                    // Symlinked directories are not followed: a loop would never end.
                    if ((File.GetAttributes(sub) & FileAttributes.ReparsePoint) == 0) dirs.Push(sub);
                }
            }
            catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
            {
                log.Warning("Access", "Cannot read " + dir + ": " + e.Message);
            }
        }
        return files;
    }

    private static int Main(string[] args)
    {
        Logger log;
        try
        {
            log = new Logger(new LoggerOptions { Source = "SecretScanner", DefaultCategory = "SecretsScan" });
        }
        catch (KepmlogException e)
        {
            Console.Error.WriteLine("secret-scanner-dotnet: cannot log to KEPM: " + e.Message);
            return 2;
        }
        using (log)
        {
            string root = ScanRoot(args);
            log.Info("Startup", "Scanning " + root + " for plain-text secrets");
            log.Event("{\"phase\":\"scan\",\"status\":\"started\"}");
            List<string> files = Collect(log, root);
            int flagged = 0;
            for (int n = 1; n <= files.Count; n++)
            {
                string path = files[n - 1];
                try
                {
                    var info = new FileInfo(path);
                    if (info.Length <= MaxFileBytes)
                    {
                        byte[] data = File.ReadAllBytes(path);
                        if (Markers.Any(m => Contains(data, m)))
                        {
                            flagged++;
                            log.Warning("Finding", "Possible secret in " + path);
                        }
                    }
                }
                catch (Exception e) when (e is IOException || e is UnauthorizedAccessException)
                {
                    log.Debug("Access", "Skipped " + path + ": " + e.Message);
                }
                if (n % 1000 == 0) log.Event("{\"phase\":\"scan\",\"files\":" + n + "}");
            }
            log.Event(string.Format("{{\"phase\":\"scan\",\"status\":\"done\",\"files\":{0},\"issues\":{1}}}", files.Count, flagged));
            string summary = string.Format("Scan complete: {0} issue(s) detected in {1} file(s).", flagged, files.Count);
            // Findings are the report, not a failure of the task: the exit code stays 0.
            if (flagged > 0) log.Warning(null, summary);
            else log.Info(null, summary);
            try
            {
                // Deliver everything before the agent records the exit code; Dispose would too,
                // but would not say what was lost.
                log.Shutdown(TimeSpan.FromSeconds(10));
            }
            catch (KepmlogException e)
            {
                Console.Error.WriteLine("secret-scanner-dotnet: " + e.Message);
            }
        }
        return 0;
    }
}
