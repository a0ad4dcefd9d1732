// squall's JVM entryway (after Hail's is.hail.JVMEntryway): a warm JVM that runs jobs' jars.
//
//   java -cp <dir> JVMEntryway <unix socket path>
//
// It serves one connection at a time; each connection is one job. Request (big-endian):
//   int n, then n strings (int byte length + UTF-8): jar path, main class ("" = the jar manifest's
//   Main-Class), log path, then the job's arguments.
// Reply: int code, then a string message. Codes: 2 = main returned, 0 = the job threw (the user's
// failure), 1 = the entryway could not run it (bad jar, no main class: a system error). A job that
// calls System.exit ends this JVM: the worker reads the container's exit status instead.
// Each jar gets its own class loader (cached per jar path), parented on the platform loader so
// jobs never see each other's classes or the entryway's.

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.FileOutputStream;
import java.io.PrintStream;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.net.StandardProtocolFamily;
import java.net.URL;
import java.net.URLClassLoader;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.jar.JarFile;

public final class JVMEntryway {
    static final int USER_EXCEPTION = 0;
    static final int ENTRYWAY_EXCEPTION = 1;
    static final int SUCCESS = 2;

    private static final Map<String, URLClassLoader> LOADERS = new HashMap<>();

    public static void main(String[] args) throws Exception {
        Path socket = Path.of(args[0]);
        Files.deleteIfExists(socket);
        PrintStream stdout = System.out;
        PrintStream stderr = System.err;
        try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            server.bind(UnixDomainSocketAddress.of(socket));
            stdout.println("entryway listening on " + socket);
            while (true) {
                try (SocketChannel conn = server.accept()) {
                    DataInputStream in = new DataInputStream(Channels.newInputStream(conn));
                    DataOutputStream out = new DataOutputStream(Channels.newOutputStream(conn));
                    int n = in.readInt();
                    String[] req = new String[n];
                    for (int i = 0; i < n; i++) {
                        byte[] b = new byte[in.readInt()];
                        in.readFully(b);
                        req[i] = new String(b, StandardCharsets.UTF_8);
                    }
                    int code;
                    String message;
                    try (PrintStream log = new PrintStream(new FileOutputStream(req[2], true), true)) {
                        System.setOut(log);
                        System.setErr(log);
                        try {
                            String[] jobArgs = new String[n - 3];
                            System.arraycopy(req, 3, jobArgs, 0, n - 3);
                            message = run(req[0], req[1], jobArgs, log);
                            code = message == null ? SUCCESS : USER_EXCEPTION;
                        } catch (Throwable t) {
                            t.printStackTrace(log);
                            code = ENTRYWAY_EXCEPTION;
                            message = t.toString();
                        } finally {
                            System.setOut(stdout);
                            System.setErr(stderr);
                        }
                    }
                    out.writeInt(code);
                    byte[] m = (message == null ? "" : message).getBytes(StandardCharsets.UTF_8);
                    out.writeInt(m.length);
                    out.write(m);
                    out.flush();
                } catch (java.io.EOFException e) {
                    // the worker hung up before sending a full request: wait for the next one
                }
            }
        }
    }

    /** Runs main in its own thread; null when it returned, else the user's exception. */
    static String run(String jar, String mainClass, String[] args, PrintStream log) throws Exception {
        URLClassLoader loader = LOADERS.get(jar);
        if (loader == null) {
            loader = new URLClassLoader(new URL[] {Path.of(jar).toUri().toURL()},
                                        ClassLoader.getPlatformClassLoader());
            LOADERS.put(jar, loader);
        }
        if (mainClass.isEmpty()) {
            try (JarFile jf = new JarFile(jar)) {
                mainClass = jf.getManifest() == null ? null
                    : jf.getManifest().getMainAttributes().getValue("Main-Class");
            }
            if (mainClass == null) {
                throw new IllegalArgumentException(jar + " has no Main-Class in its manifest");
            }
        }
        Method main = loader.loadClass(mainClass).getMethod("main", String[].class);
        Throwable[] failure = new Throwable[1];
        Thread thread = new Thread(() -> {
            try {
                main.invoke(null, (Object) args);
            } catch (InvocationTargetException e) {
                failure[0] = e.getCause();
            } catch (Throwable t) {
                failure[0] = t;
            }
        }, "job-main");
        thread.setContextClassLoader(loader);
        thread.start();
        thread.join();
        if (failure[0] != null) {
            failure[0].printStackTrace(log);
            return failure[0].toString();
        }
        return null;
    }
}
